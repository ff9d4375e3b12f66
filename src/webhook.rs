//! Webhooks in: who sent them (authenticity, delivery ids) and what they mean for an issue.
//!
//! Pure functions over headers and the raw body; the server (`crate::server`) answers HTTP and
//! queues the [`Intent`]s. Formats: `shared/reference/webhooks.md`.

use crate::secret::Secret;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// Who posts to which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    GitHub,
    Bitbucket,
    GitLab,
    Tracker,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::GitHub => "github",
            Source::Bitbucket => "bitbucket",
            Source::GitLab => "gitlab",
            Source::Tracker => "tracker",
        }
    }

    /// The variable that holds this source's secret.
    pub fn secret_var(self) -> &'static str {
        match self {
            Source::GitHub => crate::env::GITHUB_SECRET,
            Source::Bitbucket => crate::env::BITBUCKET_SECRET,
            Source::GitLab => crate::env::GITLAB_TOKEN,
            Source::Tracker => crate::env::TRACKER_HOOK_SECRET,
        }
    }

    pub const ALL: [Source; 4] = [
        Source::GitHub,
        Source::Bitbucket,
        Source::GitLab,
        Source::Tracker,
    ];
}

/// The secret of each source; a source without one is refused.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub github: Option<Secret>,
    pub bitbucket: Option<Secret>,
    pub gitlab: Option<Secret>,
    pub tracker: Option<Secret>,
}

impl Secrets {
    pub fn get(&self, source: Source) -> Option<&Secret> {
        match source {
            Source::GitHub => self.github.as_ref(),
            Source::Bitbucket => self.bitbucket.as_ref(),
            Source::GitLab => self.gitlab.as_ref(),
            Source::Tracker => self.tracker.as_ref(),
        }
    }

    /// Reads each secret from its variable, or from the file named by `<VAR>_FILE`.
    pub fn from_env(envs: &dyn crate::secret::EnvSource) -> crate::Result<Secrets> {
        let read = |source: Source| crate::secret::secret_from_env(envs, source.secret_var());
        Ok(Secrets {
            github: read(Source::GitHub)?,
            bitbucket: read(Source::Bitbucket)?,
            gitlab: read(Source::GitLab)?,
            tracker: read(Source::Tracker)?,
        })
    }
}

/// Why a delivery was refused before any work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: this source has no secret configured.
    NotConfigured(String),
    /// 401: missing, malformed or wrong signature/token.
    Unauthenticated(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Constant-time equality of two byte strings (their SHA-256 digests are compared, so the
/// time does not depend on where they differ nor on the secret's length).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks `sha256=<hex>` against HMAC-SHA256(secret, body) in constant time.
pub fn verify_hmac_sha256(secret: &str, body: &[u8], signature: &str) -> Result<(), String> {
    if signature.starts_with("sha1=") {
        return Err("SHA-1 signatures are not accepted; configure the webhook for SHA-256".into());
    }
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return Err("the signature is not of the form sha256=<hex>".into());
    };
    let sig = hex::decode(hex_sig).map_err(|_| "the signature is not hex".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "the signature does not match the body".to_string())
}

/// `sha256=<hex HMAC-SHA256(secret, body)>` (what senders put in their signature header).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether this is Bitbucket Data Center's "Test connection" (answered 200 unsigned).
pub fn is_bitbucket_ping(headers: &HeaderMap) -> bool {
    header(headers, "x-event-key") == Some("diagnostics:ping")
}

/// Authenticity, before anything else is read: the source must have a secret, and the
/// delivery must carry a valid signature (GitHub, Bitbucket) or token (GitLab, Tracker).
pub fn authenticate(
    source: Source,
    secrets: &Secrets,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let Some(secret) = secrets.get(source) else {
        return Err(Refusal::NotConfigured(format!(
            "{} webhooks are not accepted: {} is not set",
            source.name(),
            source.secret_var()
        )));
    };
    let secret = secret.expose();
    let unauth = |m: &str| Err(Refusal::Unauthenticated(m.to_string()));
    match source {
        Source::GitHub | Source::Bitbucket => {
            let sig = header(headers, "x-hub-signature-256")
                .filter(|_| source == Source::GitHub)
                .or_else(|| header(headers, "x-hub-signature"));
            match sig {
                None => unauth("no X-Hub-Signature-256 / X-Hub-Signature header"),
                Some(sig) => {
                    verify_hmac_sha256(secret, body, sig).map_err(Refusal::Unauthenticated)
                }
            }
        }
        Source::GitLab => match header(headers, "x-gitlab-token") {
            Some(t) if ct_eq(t.as_bytes(), secret.as_bytes()) => Ok(()),
            Some(_) => unauth("the X-Gitlab-Token does not match"),
            None => unauth("no X-Gitlab-Token header"),
        },
        Source::Tracker => {
            let got = header(headers, "authorization").and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
            match got {
                Some(t) if ct_eq(t.as_bytes(), secret.as_bytes()) => Ok(()),
                Some(_) => unauth("the bearer token does not match"),
                None => unauth("no `Authorization: Bearer <secret>` header"),
            }
        }
    }
}

/// The delivery id a redelivery repeats (see the reference's table).
pub fn delivery_id(source: Source, headers: &HeaderMap) -> Option<String> {
    let names: &[&str] = match source {
        Source::GitHub => &["x-github-delivery"],
        Source::Bitbucket => &["x-request-uuid", "x-request-id"],
        Source::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
        Source::Tracker => &[],
    };
    names
        .iter()
        .find_map(|n| header(headers, n))
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect())
}

/// How a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    Approved,
    ChangesRequested,
    /// Declined / closed without merge.
    Rejected,
}

impl Review {
    pub fn name(self) -> &'static str {
        match self {
            Review::Approved => "approved",
            Review::ChangesRequested => "changes_requested",
            Review::Rejected => "rejected",
        }
    }
}

/// What a delivery asks of an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// Move the issue to the status configured for this review outcome.
    Review {
        issue: String,
        /// Further keys found (in the title, description, comment), tried in order when the
        /// Tracker does not know `issue` (a branch like `fix-build-2024` looks like a key).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        candidates: Vec<String>,
        review: Review,
        repo: String,
        branch: String,
        title: String,
        url: Option<String>,
    },
    /// (Re)deploy the issue's bench from `branch` of `repo` (a repository name from the payload).
    Deploy {
        issue: String,
        repo: String,
        branch: String,
        commit: Option<String>,
    },
    /// The branch was deleted: tear the issue's bench down if it was deployed from it.
    Remove {
        issue: String,
        repo: String,
        branch: String,
    },
    /// The Tracker says the issue closed: re-read it and tear the bench down if it is closed.
    Close { issue: String },
}

impl Intent {
    pub fn issue(&self) -> &str {
        match self {
            Intent::Review { issue, .. }
            | Intent::Deploy { issue, .. }
            | Intent::Remove { issue, .. }
            | Intent::Close { issue } => issue,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Review { .. } => "review",
            Intent::Deploy { .. } => "deploy",
            Intent::Remove { .. } => "remove",
            Intent::Close { .. } => "close",
        }
    }
}

/// What a delivery means: intents to queue, and what was ignored (and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub event: String,
    pub intents: Vec<Intent>,
    pub ignored: Vec<String>,
    pub ping: bool,
}

impl Parsed {
    fn ignore(event: &str, why: impl Into<String>) -> Parsed {
        Parsed {
            event: event.to_string(),
            ignored: vec![why.into()],
            ..Default::default()
        }
    }
}

/// Finds issue keys: the branch with the configured pattern, free text (title, description,
/// comment) only with upper-case keys (`utf-8` in a sentence is not an issue).
pub struct KeyFinder {
    branch: Regex,
    text: Regex,
}

impl KeyFinder {
    pub fn new(branch_pattern: &str) -> crate::Result<KeyFinder> {
        Ok(KeyFinder {
            branch: Regex::new(branch_pattern).map_err(|e| {
                crate::Error::usage(format!("invalid issue pattern `{branch_pattern}`: {e}"))
            })?,
            text: Regex::new(r"(?:^|[^A-Za-z0-9_])([A-Z]+-[0-9]+)(?:$|[^A-Za-z0-9_])")
                .expect("static regex"),
        })
    }

    pub fn in_branch(&self, branch: &str) -> Option<String> {
        let caps = self.branch.captures(branch)?;
        let m = caps.get(1).or_else(|| caps.get(0))?;
        crate::naming::normalize_issue_key(m.as_str()).ok()
    }

    /// The source branch first, then each text in order.
    pub fn find(&self, branch: &str, texts: &[&str]) -> Option<String> {
        self.find_all(branch, texts).into_iter().next()
    }

    /// Every key found, the branch's first, then each text's in order, without repeats.
    pub fn find_all(&self, branch: &str, texts: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self.in_branch(branch).into_iter().collect();
        for t in texts {
            for caps in self.text.captures_iter(t) {
                if let Some(k) = caps
                    .get(1)
                    .and_then(|m| crate::naming::normalize_issue_key(m.as_str()).ok())
                {
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
        out
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn owned(v: &Value, path: &[&str]) -> String {
    s(v, path).unwrap_or_default().to_string()
}

/// A pull request's data, as every platform carries it.
struct PullRequest<'a> {
    repo: String,
    source_branch: &'a str,
    target_branch: &'a str,
    title: &'a str,
    description: &'a str,
    comment: &'a str,
    url: Option<String>,
}

impl PullRequest<'_> {
    fn review(&self, event: &str, review: Review, keys: &KeyFinder) -> Parsed {
        let mut found = keys
            .find_all(
                self.source_branch,
                &[self.title, self.description, self.comment],
            )
            .into_iter();
        match found.next() {
            Some(issue) => Parsed {
                event: event.to_string(),
                intents: vec![Intent::Review {
                    issue,
                    candidates: found.take(5).collect(),
                    review,
                    repo: self.repo.clone(),
                    branch: self.source_branch.to_string(),
                    title: self.title.to_string(),
                    url: self.url.clone(),
                }],
                ..Default::default()
            },
            None => Parsed::ignore(
                event,
                format!(
                    "no issue key in branch `{}`, the title, the description or the comment",
                    self.source_branch
                ),
            ),
        }
    }

    /// A merge: the target branch's bench is redeployed, when it is an issue branch.
    fn merged(&self, event: &str, commit: Option<String>, keys: &KeyFinder) -> Parsed {
        push(event, &self.repo, self.target_branch, commit, false, keys)
    }
}

/// A push to (or deletion of) one branch.
fn push(
    event: &str,
    repo: &str,
    branch: &str,
    commit: Option<String>,
    deleted: bool,
    keys: &KeyFinder,
) -> Parsed {
    let Some(issue) = keys.in_branch(branch) else {
        return Parsed::ignore(event, format!("branch `{branch}` carries no issue key"));
    };
    if crate::naming::validate_branch(branch).is_err() {
        return Parsed::ignore(event, format!("`{branch}` is not a valid branch name"));
    }
    let intent = if deleted {
        Intent::Remove {
            issue,
            repo: repo.to_string(),
            branch: branch.to_string(),
        }
    } else {
        Intent::Deploy {
            issue,
            repo: repo.to_string(),
            branch: branch.to_string(),
            commit,
        }
    };
    Parsed {
        event: event.to_string(),
        intents: vec![intent],
        ..Default::default()
    }
}

fn merge(event: &str, parts: Vec<Parsed>) -> Parsed {
    let mut out = Parsed {
        event: event.to_string(),
        ..Default::default()
    };
    for p in parts {
        out.intents.extend(p.intents);
        out.ignored.extend(p.ignored);
    }
    out
}

fn is_zero_sha(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c == '0')
}

/// What an authenticated delivery means. `Err` is a body that is not what the source sends
/// (answered 400).
pub fn parse(
    source: Source,
    headers: &HeaderMap,
    body: &[u8],
    keys: &KeyFinder,
) -> Result<Parsed, String> {
    if source == Source::Bitbucket && is_bitbucket_ping(headers) {
        return Ok(Parsed {
            event: "diagnostics:ping".into(),
            ping: true,
            ..Default::default()
        });
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match source {
        Source::GitHub => Ok(github(
            header(headers, "x-github-event").unwrap_or(""),
            &v,
            keys,
        )),
        Source::Bitbucket => {
            let event = header(headers, "x-event-key")
                .or_else(|| s(&v, &["eventKey"]))
                .unwrap_or("");
            // Data Center sends X-Request-Id and repeats the event in the body; Cloud sends
            // X-Request-UUID.
            let data_center = headers.contains_key("x-request-id")
                || (!headers.contains_key("x-request-uuid") && v.get("eventKey").is_some());
            Ok(if data_center {
                bitbucket_dc(event, &v, keys)
            } else {
                bitbucket_cloud(event, &v, keys)
            })
        }
        Source::GitLab => Ok(gitlab(
            header(headers, "x-gitlab-event").unwrap_or(""),
            &v,
            keys,
        )),
        Source::Tracker => {
            let key = s(&v, &["issue"]).ok_or("the body has no \"issue\" key")?;
            let issue = crate::naming::normalize_issue_key(key).map_err(|e| e.to_string())?;
            Ok(Parsed {
                event: "issue closed".into(),
                intents: vec![Intent::Close { issue }],
                ..Default::default()
            })
        }
    }
}

fn github(event: &str, v: &Value, keys: &KeyFinder) -> Parsed {
    let pr = |comment: &'static [&'static str]| PullRequest {
        repo: owned(v, &["repository", "full_name"]),
        source_branch: s(v, &["pull_request", "head", "ref"]).unwrap_or(""),
        target_branch: s(v, &["pull_request", "base", "ref"]).unwrap_or(""),
        title: s(v, &["pull_request", "title"]).unwrap_or(""),
        description: s(v, &["pull_request", "body"]).unwrap_or(""),
        comment: s(v, comment).unwrap_or(""),
        url: s(v, &["pull_request", "html_url"]).map(str::to_string),
    };
    let action = s(v, &["action"]).unwrap_or("");
    match event {
        "ping" => Parsed {
            event: event.into(),
            ping: true,
            ..Default::default()
        },
        "pull_request_review" if action == "submitted" => {
            let pr = pr(&["review", "body"]);
            match s(v, &["review", "state"])
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("approved") => pr.review(event, Review::Approved, keys),
                Some("changes_requested") => pr.review(event, Review::ChangesRequested, keys),
                other => Parsed::ignore(
                    event,
                    format!("review state `{}` changes nothing", other.unwrap_or("")),
                ),
            }
        }
        "pull_request" if action == "closed" => {
            let pr = pr(&[]);
            if v["pull_request"]["merged"].as_bool() == Some(true) {
                let commit = s(v, &["pull_request", "merge_commit_sha"]).map(str::to_string);
                pr.merged(event, commit, keys)
            } else {
                pr.review(event, Review::Rejected, keys)
            }
        }
        "push" => {
            let r = s(v, &["ref"]).unwrap_or("");
            let Some(branch) = r.strip_prefix("refs/heads/") else {
                return Parsed::ignore(event, format!("`{r}` is not a branch"));
            };
            let deleted = v["deleted"].as_bool() == Some(true);
            let commit = s(v, &["after"])
                .filter(|a| !is_zero_sha(a))
                .map(str::to_string);
            push(
                event,
                &owned(v, &["repository", "full_name"]),
                branch,
                commit,
                deleted,
                keys,
            )
        }
        _ => Parsed::ignore(
            event,
            format!("event `{event}` (action `{action}`) changes nothing"),
        ),
    }
}

fn bitbucket_cloud(event: &str, v: &Value, keys: &KeyFinder) -> Parsed {
    let pr = PullRequest {
        repo: owned(v, &["repository", "full_name"]),
        source_branch: s(v, &["pullrequest", "source", "branch", "name"]).unwrap_or(""),
        target_branch: s(v, &["pullrequest", "destination", "branch", "name"]).unwrap_or(""),
        title: s(v, &["pullrequest", "title"]).unwrap_or(""),
        description: s(v, &["pullrequest", "description"]).unwrap_or(""),
        comment: s(v, &["comment", "content", "raw"]).unwrap_or(""),
        url: s(v, &["pullrequest", "links", "html", "href"]).map(str::to_string),
    };
    match event {
        "pullrequest:approved" => pr.review(event, Review::Approved, keys),
        "pullrequest:changes_request_created" => pr.review(event, Review::ChangesRequested, keys),
        "pullrequest:rejected" => pr.review(event, Review::Rejected, keys),
        "pullrequest:fulfilled" => {
            let commit = s(v, &["pullrequest", "merge_commit", "hash"]).map(str::to_string);
            pr.merged(event, commit, keys)
        }
        "repo:push" => {
            let changes = v["push"]["changes"].as_array().cloned().unwrap_or_default();
            let parts = changes
                .iter()
                .map(|c| {
                    let new = &c["new"];
                    if new.is_null() {
                        match (s(c, &["old", "type"]), s(c, &["old", "name"])) {
                            (Some("branch"), Some(b)) => push(event, &pr.repo, b, None, true, keys),
                            _ => Parsed::ignore(event, "a deleted ref that is not a branch"),
                        }
                    } else {
                        match (s(new, &["type"]), s(new, &["name"])) {
                            (Some("branch"), Some(b)) => {
                                let commit = s(new, &["target", "hash"]).map(str::to_string);
                                push(event, &pr.repo, b, commit, false, keys)
                            }
                            _ => Parsed::ignore(event, "a pushed ref that is not a branch"),
                        }
                    }
                })
                .collect();
            merge(event, parts)
        }
        _ => Parsed::ignore(event, format!("event `{event}` changes nothing")),
    }
}

fn bitbucket_dc(event: &str, v: &Value, keys: &KeyFinder) -> Parsed {
    let repo_of = |r: &Value| {
        format!(
            "{}/{}",
            s(r, &["project", "key"]).unwrap_or(""),
            s(r, &["slug"]).unwrap_or("")
        )
    };
    let pr = PullRequest {
        repo: repo_of(&v["pullRequest"]["toRef"]["repository"]),
        source_branch: s(v, &["pullRequest", "fromRef", "displayId"]).unwrap_or(""),
        target_branch: s(v, &["pullRequest", "toRef", "displayId"]).unwrap_or(""),
        title: s(v, &["pullRequest", "title"]).unwrap_or(""),
        description: s(v, &["pullRequest", "description"]).unwrap_or(""),
        comment: s(v, &["comment", "text"]).unwrap_or(""),
        url: v["pullRequest"]["links"]["self"][0]["href"]
            .as_str()
            .map(str::to_string),
    };
    let participant = s(v, &["participant", "status"]).unwrap_or("");
    match event {
        "pr:reviewer:approved" => pr.review(event, Review::Approved, keys),
        "pr:reviewer:needs_work" | "pr:reviewer:changes_requested" => {
            pr.review(event, Review::ChangesRequested, keys)
        }
        "pr:declined" => pr.review(event, Review::Rejected, keys),
        e if e.starts_with("pr:reviewer:") && participant == "NEEDS_WORK" => {
            pr.review(event, Review::ChangesRequested, keys)
        }
        e if e.starts_with("pr:reviewer:") && participant == "APPROVED" => {
            pr.review(event, Review::Approved, keys)
        }
        "pr:merged" => {
            let commit =
                s(v, &["pullRequest", "properties", "mergeCommit", "id"]).map(str::to_string);
            pr.merged(event, commit, keys)
        }
        "repo:refs_changed" => {
            let repo = repo_of(&v["repository"]);
            let changes = v["changes"].as_array().cloned().unwrap_or_default();
            let parts = changes
                .iter()
                .map(|c| {
                    let branch = s(c, &["ref", "displayId"]).unwrap_or("");
                    if s(c, &["ref", "type"]) != Some("BRANCH") {
                        return Parsed::ignore(event, format!("`{branch}` is not a branch"));
                    }
                    let deleted = s(c, &["type"]) == Some("DELETE");
                    let commit = s(c, &["toHash"])
                        .filter(|h| !is_zero_sha(h))
                        .map(str::to_string);
                    push(event, &repo, branch, commit, deleted, keys)
                })
                .collect();
            merge(event, parts)
        }
        _ => Parsed::ignore(event, format!("event `{event}` changes nothing")),
    }
}

fn gitlab(event: &str, v: &Value, keys: &KeyFinder) -> Parsed {
    let repo = owned(v, &["project", "path_with_namespace"]);
    match event {
        "Merge Request Hook" => {
            let pr = PullRequest {
                repo: repo.clone(),
                source_branch: s(v, &["object_attributes", "source_branch"]).unwrap_or(""),
                target_branch: s(v, &["object_attributes", "target_branch"]).unwrap_or(""),
                title: s(v, &["object_attributes", "title"]).unwrap_or(""),
                description: s(v, &["object_attributes", "description"]).unwrap_or(""),
                comment: "",
                url: s(v, &["object_attributes", "url"]).map(str::to_string),
            };
            let action = s(v, &["object_attributes", "action"]).unwrap_or("");
            let changes_requested = v["reviewers"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| s(r, &["state"]) == Some("requested_changes"))
            });
            match action {
                "approved" | "approval" => pr.review(event, Review::Approved, keys),
                "close" => pr.review(event, Review::Rejected, keys),
                "merge" => {
                    let commit =
                        s(v, &["object_attributes", "merge_commit_sha"]).map(str::to_string);
                    pr.merged(event, commit, keys)
                }
                _ if changes_requested => pr.review(event, Review::ChangesRequested, keys),
                _ => Parsed::ignore(
                    event,
                    format!("merge request action `{action}` changes nothing"),
                ),
            }
        }
        "Push Hook" => {
            let r = s(v, &["ref"]).unwrap_or("");
            let Some(branch) = r.strip_prefix("refs/heads/") else {
                return Parsed::ignore(event, format!("`{r}` is not a branch"));
            };
            let after = s(v, &["after"]).unwrap_or("");
            let deleted = is_zero_sha(after);
            let commit = s(v, &["checkout_sha"])
                .or(Some(after))
                .filter(|c| !c.is_empty() && !is_zero_sha(c))
                .map(str::to_string);
            push(event, &repo, branch, commit, deleted, keys)
        }
        _ => Parsed::ignore(event, format!("event `{event}` changes nothing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        let sig = sign("It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_hmac_sha256("It's a Secret to Everybody", b"Hello, World!", &sig).is_ok());
        assert!(verify_hmac_sha256("It's a Secret to Everybody", b"Hello, World?", &sig).is_err());
        assert!(verify_hmac_sha256("x", b"y", "sha1=0123")
            .unwrap_err()
            .contains("SHA-1"));
    }

    fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/webhooks")
                .join(rel),
        )
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    /// The captured payloads as they are: what each means (most carry no issue key).
    #[test]
    fn captured_payloads_are_understood() {
        let keys = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
        let parse_file = |source, hs: &[(&'static str, &str)], rel: &str| {
            parse(source, &headers(hs), &fixture(rel), &keys).unwrap()
        };
        // a tag deletion is not a branch
        let p = parse_file(
            Source::GitHub,
            &[("x-github-event", "push")],
            "github/push.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("refs/tags/simple-tag"),
            "{p:?}"
        );
        // a review that only comments changes nothing
        let p = parse_file(
            Source::GitHub,
            &[("x-github-event", "pull_request_review")],
            "github/pull_request_review.submitted.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("commented"),
            "{p:?}"
        );
        // a merged Bitbucket Cloud pull request redeploys its target (master: no key)
        let p = parse_file(
            Source::Bitbucket,
            &[
                ("x-event-key", "pullrequest:fulfilled"),
                ("x-request-uuid", "u"),
            ],
            "bitbucket-cloud/bitbucket-cloud-pull-event-fulfilled.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("`master`"),
            "{p:?}"
        );
        // Data Center told apart by its headers; its branch push and needs-work review
        let p = parse_file(
            Source::Bitbucket,
            &[("x-event-key", "repo:refs_changed"), ("x-request-id", "r")],
            "bitbucket-server/repo-refs-changed.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("`feature/wip`"),
            "{p:?}"
        );
        let p = parse_file(
            Source::Bitbucket,
            &[
                ("x-event-key", "pr:reviewer:needs_work"),
                ("x-request-id", "r"),
            ],
            "bitbucket-server/pr-reviewer-needs-work.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("feature/wip"),
            "{p:?}"
        );
        // GitLab: a push to master and an opened merge request ("MS-Viewport" is no key)
        let p = parse_file(
            Source::GitLab,
            &[("x-gitlab-event", "Push Hook")],
            "gitlab/push-event.json",
        );
        assert!(
            p.intents.is_empty() && p.ignored[0].contains("`master`"),
            "{p:?}"
        );
        let p = parse_file(
            Source::GitLab,
            &[("x-gitlab-event", "Merge Request Hook")],
            "gitlab/merge-request-event.json",
        );
        assert!(p.intents.is_empty(), "{p:?}");
        // the Bitbucket Cloud branch `...-with-bitbucket-1532029690581` looks like a key: it is
        // the first candidate, the description's real key the next
        let mut v: Value = serde_json::from_slice(&fixture(
            "bitbucket-cloud/bitbucket-cloud-pull-event-created.json",
        ))
        .unwrap();
        v["pullrequest"]["description"] = "Implements PROJ-4.".into();
        let p = parse(
            Source::Bitbucket,
            &headers(&[
                ("x-event-key", "pullrequest:approved"),
                ("x-request-uuid", "u"),
            ]),
            &serde_json::to_vec(&v).unwrap(),
            &keys,
        )
        .unwrap();
        match &p.intents[..] {
            [Intent::Review {
                issue,
                candidates,
                review: Review::Approved,
                repo,
                ..
            }] => {
                assert_eq!(issue, "BITBUCKET-1532029690581");
                assert_eq!(candidates, &vec!["PROJ-4".to_string()]);
                assert_eq!(repo, "lkysow/atlantis-example");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deletions_and_pushes_of_issue_branches() {
        let keys = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
        let gitlab_delete = serde_json::json!({
            "ref": "refs/heads/feature/PROJ-9",
            "after": "0000000000000000000000000000000000000000",
            "project": {"path_with_namespace": "g/p"}
        });
        let p = parse(
            Source::GitLab,
            &headers(&[("x-gitlab-event", "Push Hook")]),
            &serde_json::to_vec(&gitlab_delete).unwrap(),
            &keys,
        )
        .unwrap();
        assert_eq!(
            p.intents,
            vec![Intent::Remove {
                issue: "PROJ-9".into(),
                repo: "g/p".into(),
                branch: "feature/PROJ-9".into()
            }]
        );
        let cloud_push = serde_json::json!({
            "repository": {"full_name": "o/r"},
            "push": {"changes": [
                {"new": {"type": "branch", "name": "PROJ-1-a", "target": {"hash": "abc"}}, "old": null},
                {"new": null, "old": {"type": "branch", "name": "PROJ-2-b"}},
                {"new": {"type": "tag", "name": "v1"}, "old": null}
            ]}
        });
        let p = parse(
            Source::Bitbucket,
            &headers(&[("x-event-key", "repo:push"), ("x-request-uuid", "u")]),
            &serde_json::to_vec(&cloud_push).unwrap(),
            &keys,
        )
        .unwrap();
        assert_eq!(p.intents.len(), 2, "{p:?}");
        assert_eq!(p.intents[0].kind(), "deploy");
        assert_eq!(p.intents[1].kind(), "remove");
        assert_eq!(p.ignored.len(), 1);
        // a merge into an issue branch redeploys that branch
        let mut merged: Value =
            serde_json::from_slice(&fixture("github/pull_request.closed.json")).unwrap();
        merged["pull_request"]["merged"] = true.into();
        merged["pull_request"]["base"]["ref"] = "feature/PROJ-5-epic".into();
        merged["pull_request"]["merge_commit_sha"] = "abc123".into();
        let p = parse(
            Source::GitHub,
            &headers(&[("x-github-event", "pull_request")]),
            &serde_json::to_vec(&merged).unwrap(),
            &keys,
        )
        .unwrap();
        assert_eq!(
            p.intents,
            vec![Intent::Deploy {
                issue: "PROJ-5".into(),
                repo: "Codertocat/Hello-World".into(),
                branch: "feature/PROJ-5-epic".into(),
                commit: Some("abc123".into()),
            }]
        );
    }

    #[test]
    fn keys_in_text_must_be_upper_case() {
        let k = KeyFinder::new(crate::naming::DEFAULT_ISSUE_PATTERN).unwrap();
        assert_eq!(k.find("feature/proj-42-x", &[]), Some("PROJ-42".into()));
        assert_eq!(k.find("changes", &["use utf-8 here"]), None);
        assert_eq!(k.find("changes", &["Fixes PROJ-7."]), Some("PROJ-7".into()));
        assert_eq!(
            k.find("changes", &["", "see ABC-12"]),
            Some("ABC-12".into())
        );
        assert_eq!(k.find("changes", &["MS-Viewport"]), None);
    }
}
