//! What a delivery means for an issue: a review (approved, changes requested, declined), a
//! push to an issue branch (deploy), a deleted branch, a closed issue; per platform (GitHub,
//! Bitbucket Cloud and Data Center, GitLab, the Tracker's trigger), the issue keys found in
//! branch names and titles.

use super::{header, is_bitbucket_ping, Source};
use axum::http::HeaderMap;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// serve's own clean-up (`--gc-interval`): what `benchctl gc` does.
    Gc,
}

impl Intent {
    pub fn issue(&self) -> &str {
        match self {
            Intent::Review { issue, .. }
            | Intent::Deploy { issue, .. }
            | Intent::Remove { issue, .. }
            | Intent::Close { issue } => issue,
            // gc jobs queue under a name of their own: one at a time, beside every issue's
            Intent::Gc => "(gc)",
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Intent::Review { .. } => "review",
            Intent::Deploy { .. } => "deploy",
            Intent::Remove { .. } => "remove",
            Intent::Close { .. } => "close",
            Intent::Gc => "gc",
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
    /// GitHub's `author_association` of who reviewed, or closed their own pull request
    /// (`NONE` when the payload says nothing). `None` where the platform has no such field
    /// (Bitbucket, GitLab) and when someone closed another's pull request, which only those
    /// with triage access to the repository can.
    pub actor_association: Option<String>,
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
        Source::Schedule => Err("serve's own schedule sends no webhook".into()),
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
            let association = association(v, &["review", "author_association"]);
            with_association(
                association,
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
                },
            )
        }
        "pull_request" if action == "closed" => {
            let pr = pr(&[]);
            if v["pull_request"]["merged"].as_bool() == Some(true) {
                let commit = s(v, &["pull_request", "merge_commit_sha"]).map(str::to_string);
                pr.merged(event, commit, keys)
            } else {
                // the author closing their own pull request is as trusted as the author
                let own = s(v, &["sender", "login"]).is_some()
                    && s(v, &["sender", "login"]) == s(v, &["pull_request", "user", "login"]);
                let association =
                    own.then(|| association(v, &["pull_request", "author_association"]));
                with_association(
                    association.flatten(),
                    pr.review(event, Review::Rejected, keys),
                )
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

/// GitHub's `author_association` at `path`, upper-case; `NONE` when absent.
fn association(v: &Value, path: &[&str]) -> Option<String> {
    Some(s(v, path).unwrap_or("NONE").to_ascii_uppercase())
}

fn with_association(association: Option<String>, parsed: Parsed) -> Parsed {
    Parsed {
        actor_association: association,
        ..parsed
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
