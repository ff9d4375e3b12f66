//! Feedback where the team looks: the state of a commit's bench on its code host (GitHub
//! deployments or commit statuses, GitLab and Bitbucket commit statuses). It observes a
//! deploy's events ([`observer`]): *pending* when the deploy starts work on a commit, *success*
//! with the bench's address or *failure* with the reason when it ends; a teardown marks the
//! environment inactive where the platform has that state. A code host that refuses, fails or
//! is slow never fails the deploy: each call is bounded (a 5 s timeout, one retry) and its
//! outcome is a [`Report`] in the result.

mod bitbucket;
mod github;
mod gitlab;
pub mod markdown;
pub mod observer;
mod pr;
pub mod target;

use crate::secret::{redact, EnvSource, Secret};
use serde::Serialize;
use std::time::Duration;
pub use target::{Kind, Overrides, Target};

/// A commit's bench state, as the code hosts are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Success,
    Failure,
    /// The bench was removed.
    Inactive,
}

/// One status to post.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub issue: String,
    pub branch: String,
    pub commit: String,
    /// The bench's address (success), else none.
    pub url: Option<String>,
    /// The dashboard's page of the bench, when serve's dashboard has a public address
    /// (`--dashboard-url`): where a failure's reason can be read.
    pub log_url: Option<String>,
    /// One line: what happened (cut to the platforms' 140 characters).
    pub description: String,
}

/// What the code host said, for the result (`--json`: `code_host`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `github`, `gitlab`, `bitbucket-cloud`, `bitbucket-dc`.
    pub host: &'static str,
    pub repo: String,
    /// The last state posted (`pending`, `success`, `failure`, `inactive`), or `none` when no
    /// status was posted.
    pub state: String,
    /// Why the last post failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why nothing was posted, when that is no error (no token for the repository's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What became of the pull request's comment (`--pr-comment`): `updated on #7`, `added on
    /// #7`, `no open pull request`, or why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
}

/// A failed call: the HTTP status when the host answered.
#[derive(Debug, Clone)]
pub(crate) struct CallError {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The code hosts benchctl may tell: the operator's overrides and the tokens in the
/// environment (`BENCHCTL_GITHUB_TOKEN`, `BENCHCTL_GITLAB_API_TOKEN`, `BENCHCTL_BITBUCKET_TOKEN`,
/// each also from `<VAR>_FILE`). Without a token for a repository's host nothing is posted.
#[derive(Debug, Clone, Default)]
pub struct CodeHosts {
    pub overrides: Overrides,
    /// Keep a comment on the branch's open pull request current (`--pr-comment`).
    pub pr_comment: bool,
    /// Where serve's dashboard is reachable (`--dashboard-url`): statuses link to its page of
    /// the bench.
    pub dashboard_url: Option<String>,
    tokens: Vec<(Kind, Secret)>,
    http: Option<reqwest::Client>,
}

/// One repository's host with its token: what a deploy or teardown talks to.
#[derive(Debug, Clone)]
pub struct Host {
    pub target: Target,
    token: Secret,
    http: reqwest::Client,
}

impl CodeHosts {
    /// The tokens of `envs`, with the operator's overrides.
    pub fn from_env(envs: &dyn EnvSource, overrides: Overrides) -> crate::Result<CodeHosts> {
        let mut tokens = Vec::new();
        for kind in [
            Kind::GitHub,
            Kind::GitLab,
            Kind::BitbucketCloud,
            Kind::BitbucketDc,
        ] {
            if let Some(t) = crate::secret::secret_from_env(envs, kind.token_var())? {
                tokens.push((kind, t));
            }
        }
        // how long one call may take (`BENCHCTL_CODE_HOST_TIMEOUT`, seconds; default 5)
        let timeout = envs
            .get(crate::env::CODE_HOST_TIMEOUT)
            .and_then(|v| v.parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        // a client only when there is a host to talk to (not on every deploy's start)
        let http = match tokens.is_empty() {
            true => None,
            false => Some(
                reqwest::Client::builder()
                    .timeout(timeout.unwrap_or(Duration::from_secs(5)))
                    .connect_timeout(Duration::from_secs(3))
                    .user_agent(concat!("benchctl/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| crate::Error::usage(format!("cannot make an HTTP client: {e}")))?,
            ),
        };
        Ok(CodeHosts {
            overrides,
            pr_comment: false,
            dashboard_url: None,
            tokens,
            http,
        })
    }

    pub fn with_pr_comment(self, on: bool, dashboard_url: Option<String>) -> CodeHosts {
        CodeHosts {
            pr_comment: on,
            dashboard_url: dashboard_url.map(|u| u.trim_end_matches('/').to_string()),
            ..self
        }
    }

    /// The dashboard's page of `issue`, when its address is known.
    pub fn page_of(&self, issue: &str) -> Option<String> {
        self.dashboard_url
            .as_ref()
            .map(|d| format!("{d}/bench/{issue}"))
    }

    /// The host of the repository at `location` (its public URL), or why none is told: a
    /// note, not an error. `Ok(None)`: the repository is on no code host benchctl knows
    /// (a local path, a `git://` daemon), which needs no note.
    pub fn host(&self, location: &str) -> Result<Option<Host>, String> {
        let target = match target::target(location, &self.overrides) {
            Ok(t) => t,
            Err(_) if self.overrides.kind.is_none() => return Ok(None),
            Err(why) => return Err(why),
        };
        let Some((_, token)) = self.tokens.iter().find(|(k, _)| *k == target.kind) else {
            return Err(format!(
                "{} {}: no {} set, so no commit status",
                target.kind.as_str(),
                target.repo,
                target.kind.token_var()
            ));
        };
        let Some(http) = self.http.clone() else {
            return Err("no HTTP client".into());
        };
        Ok(Some(Host {
            target,
            token: token.clone(),
            http,
        }))
    }
}

/// What a deploy's first post left for its last: a GitHub deployment's id, or that GitHub
/// took commit statuses instead (a token without the deployments permission).
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub github_deployment: Option<u64>,
    pub github_statuses: bool,
}

impl Host {
    /// Posts `status`; the session carries a deployment from the first post to the next.
    pub async fn post(&self, status: &Status, session: &mut Session) -> Report {
        let result = match self.target.kind {
            Kind::GitHub => github::post(self, status, session).await,
            Kind::GitLab => gitlab::post(self, status).await,
            Kind::BitbucketCloud | Kind::BitbucketDc => bitbucket::post(self, status).await,
        };
        let state = match (&result, status.state) {
            (Err(_), _) => "none",
            (Ok(false), _) => "none",
            (Ok(true), State::Pending) => "pending",
            (Ok(true), State::Success) => "success",
            (Ok(true), State::Failure) => "failure",
            (Ok(true), State::Inactive) => "inactive",
        };
        Report {
            host: self.target.kind.as_str(),
            repo: self.target.repo.clone(),
            state: state.to_string(),
            error: match result {
                Err(e) => Some(redact(&e.message)),
                Ok(false) => Some(format!(
                    "{} has no state for a removed bench",
                    self.target.kind.as_str()
                )),
                Ok(true) => None,
            },
            note: None,
            pull_request: None,
        }
    }

    /// Keeps the branch's pull request comment current with `status` (the bench at
    /// `bench_url`): what became of it, for the report.
    pub async fn comment(&self, status: &Status, bench_url: Option<&str>) -> String {
        match pr::upsert(self, &status.branch, &pr::body(status, bench_url)).await {
            Ok(Some(said)) => said,
            Ok(None) => format!("no open pull request of branch `{}`", status.branch),
            Err(e) => format!("the comment failed: {}", redact(&e.message)),
        }
    }

    /// Sends a request made by `make`, retrying once after a timeout, a refused connection, a
    /// 5xx or a 429; the JSON answer (or `null`).
    pub(crate) async fn send(
        &self,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, CallError> {
        let mut last = None;
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match make(&self.http).send().await {
                Ok(r) if r.status().is_success() => {
                    return Ok(r.json().await.unwrap_or(serde_json::Value::Null))
                }
                Ok(r) => {
                    let code = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    let err = CallError {
                        status: Some(code),
                        message: format!(
                            "{} answered {code}: {}",
                            self.target.kind.as_str(),
                            body.chars().take(200).collect::<String>().trim()
                        ),
                    };
                    if code < 500 && code != 429 {
                        return Err(err);
                    }
                    last = Some(err);
                }
                Err(e) => {
                    last = Some(CallError {
                        status: None,
                        message: format!(
                            "{} did not answer: {}",
                            self.target.kind.as_str(),
                            if e.is_timeout() {
                                "timed out".to_string()
                            } else {
                                e.to_string()
                            }
                        ),
                    })
                }
            }
        }
        Err(last.unwrap_or(CallError {
            status: None,
            message: "no attempt".into(),
        }))
    }

    pub(crate) fn token(&self) -> &str {
        self.token.expose()
    }

    /// A request to `{api}/{path}` with the platform's authentication and headers.
    /// The value of header `name` in the answer to a `GET` of `path`; `None` when the call
    /// fails or the answer lacks it.
    pub(crate) async fn header_of(&self, path: &str, name: &str) -> Option<String> {
        let r = self.request(&self.http, reqwest::Method::GET, path);
        let answer = r.send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        let value = answer.headers().get(name)?.to_str().ok()?;
        Some(value.to_string())
    }

    pub(crate) fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let r = http.request(method, self.url(path));
        match self.target.kind {
            Kind::GitHub => r
                .bearer_auth(self.token())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            Kind::GitLab => r.header("PRIVATE-TOKEN", self.token()),
            Kind::BitbucketCloud | Kind::BitbucketDc => match self.token().split_once(':') {
                Some((user, password)) => r.basic_auth(user, Some(password)),
                None => r.bearer_auth(self.token()),
            },
        }
    }

    /// `{api}/{path}`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.target.api)
    }
}

/// The first line of `text` in at most `max` characters: when longer, its end (where an
/// error's own cause is), after an ellipsis.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let n = line.chars().count();
    match n > max {
        true => format!("…{}", line.chars().skip(n - (max - 1)).collect::<String>()),
        false => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_line_keeps_its_end() {
        let text = format!(
            "build of X-1 failed: {}stat missing-file\nmore",
            "x".repeat(200)
        );
        let got = super::cut(&text, 140);
        assert_eq!(got.chars().count(), 140);
        assert!(
            got.starts_with('…') && got.ends_with("stat missing-file"),
            "{got}"
        );
        assert_eq!(super::cut("short\nsecond", 140), "short");
    }
}
