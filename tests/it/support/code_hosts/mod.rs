//! Fakes of the code hosts' status APIs on 127.0.0.1, each checking what its platform's
//! published reference demands and answering as it does:
//! - GitHub (REST API version 2022-11-28):
//!   https://docs.github.com/en/rest/deployments/deployments#create-a-deployment (201, `id`),
//!   https://docs.github.com/en/rest/deployments/deployments#list-deployments (`environment`),
//!   https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status (states
//!   `error failure inactive in_progress queued pending success`, description <= 140),
//!   https://docs.github.com/en/rest/commits/statuses#create-a-commit-status (states
//!   `error failure pending success`); `Authorization: Bearer`, `Accept:
//!   application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent` (GitHub refuses
//!   requests without one).
//! - GitLab: https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit
//!   (`POST /api/v4/projects/:id/statuses/:sha`, `:id` the URL-encoded path, states `pending
//!   running success failed canceled`, `PRIVATE-TOKEN`; 201).
//! - Bitbucket Cloud: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/
//!   (`POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`, `key`,
//!   `state` `INPROGRESS SUCCESSFUL FAILED STOPPED`, `url` required; 201).
//! - Bitbucket Data Center: https://developer.atlassian.com/server/bitbucket/how-tos/updating-build-status-for-commits
//!   (`POST /rest/build-status/1.0/commits/{commitId}`, `state` `INPROGRESS SUCCESSFUL FAILED`,
//!   `key` and `url` required; 204).
//!
//! The token's user (who wrote a comment, to tell benchctl's own from a person's):
//! - GitHub: https://docs.github.com/en/rest/users/users#get-the-authenticated-user
//!   (`GET /user`, `login`); a comment's `user.login`.
//! - GitLab: https://docs.gitlab.com/ee/api/users.html#list-current-user (`GET /api/v4/user`,
//!   `id`); a note's `author.id`.
//! - Bitbucket Cloud: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/#api-user-get
//!   (`GET /2.0/user`, `uuid`); a comment's `user.uuid`.
//! - Bitbucket Data Center has no resource for the current user: every authenticated answer
//!   names it in `X-AUSERNAME` (here on `GET /rest/api/latest/application-properties`,
//!   https://developer.atlassian.com/server/bitbucket/rest/v906/api-group-system-maintenance/#api-api-latest-application-properties-get);
//!   a comment's `author.name`.
//!
//! Faults: an HTTP status for every request, a delay, or GitHub refusing deployments (a token
//! without that permission).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod pulls;
use pulls::pulls;

/// The token's user on every fake.
pub const BOT: &str = "benchctl-bot";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Platform {
    GitHub,
    GitLab,
    BitbucketCloud,
    BitbucketDc,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::GitHub,
        Platform::GitLab,
        Platform::BitbucketCloud,
        Platform::BitbucketDc,
    ];
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
}

#[derive(Clone, Debug, Default)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub environment: String,
    /// Its statuses' states and environment URLs, in order.
    pub statuses: Vec<(String, Option<String>)>,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    /// Every request answers this status.
    fail_with: Option<u16>,
    delay: Option<Duration>,
    /// GitHub refuses deployments (403), as for a token without that permission.
    no_deployments: bool,
    deployments: Vec<Deployment>,
    /// Commit statuses (all platforms): (sha, state, url, description).
    statuses: Vec<(String, String, Option<String>, String)>,
    /// Open pull requests: (source branch, number).
    pulls: Vec<(String, u64)>,
    /// Comments on pull requests.
    comments: Vec<Comment>,
}

/// A comment on a pull request.
#[derive(Clone, Debug)]
pub struct Comment {
    pub pull: u64,
    pub id: u64,
    pub body: String,
    /// Who wrote it: [`BOT`] (the token's user) or someone else.
    pub author: &'static str,
    /// Bitbucket Data Center's optimistic lock: an edit names the version it read.
    pub version: u64,
}

pub struct FakeCodeHost {
    pub platform: Platform,
    /// What `--code-host-api` names.
    pub api: String,
    pub token: &'static str,
    state: Arc<Mutex<State>>,
    _server: super::LoopbackServer,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn one_of(v: &Value, key: &str, allowed: &[&str]) -> Result<String, String> {
    match v[key].as_str() {
        Some(s) if allowed.contains(&s) => Ok(s.to_string()),
        other => Err(format!("`{key}` must be one of {allowed:?}, not {other:?}")),
    }
}

async fn handle(
    axum::extract::State((platform, token, state)): axum::extract::State<(
        Platform,
        &'static str,
        Arc<Mutex<State>>,
    )>,
    method: Method,
    uri: Uri,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_string();
    let (fail_with, delay, no_deployments) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: method.to_string(),
            path: match uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            },
            body: body.clone(),
        });
        (s.fail_with, s.delay, s.no_deployments)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = fail_with {
        return refuse(
            StatusCode::from_u16(code).unwrap(),
            "fault injected by the test",
        );
    }
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("user-agent").is_empty() {
        return refuse(StatusCode::FORBIDDEN, "a User-Agent header is required");
    }
    let authorized = match platform {
        Platform::GitHub | Platform::BitbucketCloud | Platform::BitbucketDc => {
            header("authorization") == format!("Bearer {token}")
        }
        Platform::GitLab => header("private-token") == token,
    };
    if !authorized {
        return refuse(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(r) = whoami(platform, &method, &parts) {
        return r;
    }
    if let Some(r) = pulls(&state, platform, &method, &parts, &query, &body) {
        return match r {
            Ok(r) => r,
            Err(message) => refuse(StatusCode::BAD_REQUEST, &message),
        };
    }
    let result = match platform {
        Platform::GitHub => github(
            &state,
            &method,
            &parts,
            &headers,
            &body,
            &uri,
            no_deployments,
        ),
        Platform::GitLab => gitlab(&state, &method, &parts, &body),
        Platform::BitbucketCloud | Platform::BitbucketDc => {
            bitbucket(&state, platform, &method, &parts, &body)
        }
    };
    match result {
        Ok(r) => r,
        Err(message) => refuse(StatusCode::UNPROCESSABLE_ENTITY, &message),
    }
}

/// The token's user, as each platform tells it (see the module's header); `None` for other
/// paths.
fn whoami(platform: Platform, method: &Method, parts: &[&str]) -> Option<Response> {
    if method != Method::GET {
        return None;
    }
    let body = match (platform, parts) {
        (Platform::GitHub, ["user"]) => json!({ "login": BOT, "id": 1, "type": "User" }),
        (Platform::GitLab, ["api", "v4", "user"]) => json!({ "id": 1, "username": BOT }),
        (Platform::BitbucketCloud, ["2.0", "user"]) => {
            json!({ "uuid": format!("{{{BOT}}}"), "display_name": BOT })
        }
        (Platform::BitbucketDc, ["rest", "api", "latest", "application-properties"]) => {
            let props = json!({ "version": "9.0.0", "displayName": "Bitbucket" });
            return Some(([("X-AUSERNAME", BOT)], axum::Json(props)).into_response());
        }
        _ => return None,
    };
    Some(axum::Json(body).into_response())
}

fn github(
    state: &Mutex<State>,
    method: &Method,
    parts: &[&str],
    headers: &HeaderMap,
    body: &Value,
    uri: &Uri,
    no_deployments: bool,
) -> Result<Response, String> {
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
    if header("accept") != "application/vnd.github+json"
        || header("x-github-api-version") != "2022-11-28"
    {
        return Err("Accept and X-GitHub-Api-Version as the reference gives them".into());
    }
    let mut s = state.lock().unwrap();
    match (method.as_str(), parts) {
        (_, ["repos", _, _, "deployments", ..]) if no_deployments => Ok(refuse(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        )),
        ("POST", ["repos", _, _, "deployments"]) => {
            let sha = body["ref"].as_str().ok_or("`ref` is required")?;
            let environment = body["environment"].as_str().ok_or("`environment`")?;
            if !body["required_contexts"].is_array() || body["auto_merge"] != json!(false) {
                return Err(
                    "required_contexts [] and auto_merge false (no merge of the base)".into(),
                );
            }
            let id = 1000 + s.deployments.len() as u64;
            s.deployments.push(Deployment {
                id,
                sha: sha.into(),
                environment: environment.into(),
                statuses: vec![],
            });
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "id": id, "ref": sha, "environment": environment })),
            )
                .into_response())
        }
        ("GET", ["repos", _, _, "deployments"]) => {
            let env = uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("environment="))
                .unwrap_or("")
                .to_string();
            let list: Vec<Value> = s
                .deployments
                .iter()
                .filter(|d| env.is_empty() || d.environment == env)
                .map(|d| json!({ "id": d.id, "ref": d.sha, "environment": d.environment }))
                .collect();
            Ok(axum::Json(Value::Array(list)).into_response())
        }
        ("POST", ["repos", _, _, "deployments", id, "statuses"]) => {
            let state_ = one_of(
                body,
                "state",
                &[
                    "error",
                    "failure",
                    "inactive",
                    "in_progress",
                    "queued",
                    "pending",
                    "success",
                ],
            )?;
            if body["description"]
                .as_str()
                .is_some_and(|d| d.chars().count() > 140)
            {
                return Err("description is longer than 140 characters".into());
            }
            let url = body["environment_url"].as_str().map(String::from);
            let Some(d) = s.deployments.iter_mut().find(|d| d.id.to_string() == *id) else {
                return Ok(refuse(StatusCode::NOT_FOUND, "Not Found"));
            };
            d.statuses.push((state_.clone(), url));
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "id": 1, "state": state_ })),
            )
                .into_response())
        }
        ("POST", ["repos", _, _, "statuses", sha]) => {
            let state_ = one_of(body, "state", &["error", "failure", "pending", "success"])?;
            let url = body["target_url"].as_str().map(String::from);
            let description = body["description"].as_str().unwrap_or("").to_string();
            s.statuses
                .push((sha.to_string(), state_.clone(), url, description));
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "id": 1, "state": state_ })),
            )
                .into_response())
        }
        _ => Ok(refuse(StatusCode::NOT_FOUND, "Not Found")),
    }
}

fn gitlab(
    state: &Mutex<State>,
    method: &Method,
    parts: &[&str],
    body: &Value,
) -> Result<Response, String> {
    match (method.as_str(), parts) {
        // the project's path arrives URL-encoded: one path segment
        ("POST", ["api", "v4", "projects", id, "statuses", sha]) if id.contains("%2F") => {
            let state_ = one_of(
                body,
                "state",
                &["pending", "running", "success", "failed", "canceled"],
            )?;
            if body["name"].as_str().is_none() {
                return Err("name".into());
            }
            let url = body["target_url"].as_str().map(String::from);
            let description = body["description"].as_str().unwrap_or("").to_string();
            state.lock().unwrap().statuses.push((
                sha.to_string(),
                state_.clone(),
                url,
                description,
            ));
            Ok((
                StatusCode::CREATED,
                axum::Json(json!({ "id": 1, "sha": sha, "status": state_ })),
            )
                .into_response())
        }
        _ => Ok(refuse(StatusCode::NOT_FOUND, "404 Project Not Found")),
    }
}

fn bitbucket(
    state: &Mutex<State>,
    platform: Platform,
    method: &Method,
    parts: &[&str],
    body: &Value,
) -> Result<Response, String> {
    let sha = match (platform, method.as_str(), parts) {
        (
            Platform::BitbucketCloud,
            "POST",
            ["2.0", "repositories", _, _, "commit", sha, "statuses", "build"],
        ) => sha,
        (Platform::BitbucketDc, "POST", ["rest", "build-status", "1.0", "commits", sha]) => sha,
        _ => return Ok(refuse(StatusCode::NOT_FOUND, "not found")),
    };
    let states: &[&str] = match platform {
        Platform::BitbucketCloud => &["INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED"],
        _ => &["INPROGRESS", "SUCCESSFUL", "FAILED"],
    };
    let state_ = one_of(body, "state", states)?;
    let (Some(_key), Some(url)) = (body["key"].as_str(), body["url"].as_str()) else {
        return Err("key and url are required".into());
    };
    let description = body["description"].as_str().unwrap_or("").to_string();
    state.lock().unwrap().statuses.push((
        sha.to_string(),
        state_.clone(),
        Some(url.to_string()),
        description,
    ));
    Ok(match platform {
        Platform::BitbucketCloud => {
            (StatusCode::CREATED, axum::Json(json!({ "state": state_ }))).into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    })
}

impl FakeCodeHost {
    pub fn start(platform: Platform) -> FakeCodeHost {
        let state = Arc::new(Mutex::new(State::default()));
        let token = "code-host-token-5f0c1e";
        let app = axum::Router::new()
            .fallback(handle)
            .with_state((platform, token, state.clone()));
        let server = super::LoopbackServer::start(app);
        let api = match platform {
            Platform::GitHub | Platform::BitbucketDc => server.url.clone(),
            Platform::GitLab => format!("{}/api/v4", server.url),
            Platform::BitbucketCloud => format!("{}/2.0", server.url),
        };
        FakeCodeHost {
            platform,
            api,
            token,
            state,
            _server: server,
        }
    }

    /// Opens pull request `number` from `branch`.
    pub fn open_pull_request(&self, branch: &str, number: u64) {
        self.state
            .lock()
            .unwrap()
            .pulls
            .push((branch.to_string(), number));
    }

    /// A comment by someone other than the token's user (`author`).
    pub fn comment_as(&self, author: &'static str, pull: u64, body: &str) {
        let mut s = self.state.lock().unwrap();
        let id = 500 + s.comments.len() as u64;
        s.comments.push(Comment {
            pull,
            id,
            body: body.to_string(),
            author,
            version: 0,
        });
    }

    pub fn comments(&self) -> Vec<Comment> {
        self.state.lock().unwrap().comments.clone()
    }

    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail_with = status;
    }

    pub fn delay(&self, d: Option<Duration>) {
        self.state.lock().unwrap().delay = d;
    }

    pub fn refuse_deployments(&self) {
        self.state.lock().unwrap().no_deployments = true;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn deployments(&self) -> Vec<Deployment> {
        self.state.lock().unwrap().deployments.clone()
    }

    /// Commit statuses: (sha, state, url, description).
    pub fn statuses(&self) -> Vec<(String, String, Option<String>, String)> {
        self.state.lock().unwrap().statuses.clone()
    }

    /// The `--code-host*` flags and the token variable for this fake.
    pub fn args(&self) -> Vec<String> {
        let (kind, repo) = match self.platform {
            Platform::GitHub => ("github", "acme/shop"),
            Platform::GitLab => ("gitlab", "acme/web/shop"),
            Platform::BitbucketCloud => ("bitbucket-cloud", "acme/shop"),
            Platform::BitbucketDc => ("bitbucket-dc", "ACME/shop"),
        };
        [
            "--code-host",
            kind,
            "--code-host-api",
            &self.api,
            "--code-host-repo",
            repo,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    pub fn token_var(&self) -> &'static str {
        match self.platform {
            Platform::GitHub => "BENCHCTL_GITHUB_TOKEN",
            Platform::GitLab => "BENCHCTL_GITLAB_API_TOKEN",
            Platform::BitbucketCloud | Platform::BitbucketDc => "BENCHCTL_BITBUCKET_TOKEN",
        }
    }
}
