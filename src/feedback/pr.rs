//! One comment on the branch's open pull request, found again by a hidden marker and edited in
//! place on every deploy (never one per push): the bench's address, commit, state, time and the
//! last error. References (and the fake in `tests/it/support/code_hosts/`):
//! - GitHub: https://docs.github.com/en/rest/pulls/pulls#list-pull-requests (`head=owner:branch`),
//!   https://docs.github.com/en/rest/issues/comments (list, create, `PATCH` update);
//! - GitLab: https://docs.gitlab.com/ee/api/merge_requests.html#list-project-merge-requests
//!   (`source_branch`, `state=opened`), https://docs.gitlab.com/ee/api/notes.html#merge-requests
//!   (list, create, `PUT` update);
//! - Bitbucket Cloud: https://developer.atlassian.com/cloud/bitbucket/rest/api-group-pullrequests/
//!   (`q=source.branch.name="..."`, comments with `content.raw`, `PUT` update);
//! - Bitbucket Data Center: https://developer.atlassian.com/server/bitbucket/rest/ (pull
//!   requests `at=refs/heads/...&direction=OUTGOING`, `activities` for the comments, comment
//!   `PUT` with its `version`).
//!
//! Only the token's own comments are candidates: a person's comment that holds the marker
//! (copied, or written to be taken over) is never edited. Who the token is: GitHub `GET /user`
//! (`login`; a workflow's `GITHUB_TOKEN` may not ask, and is then `github-actions[bot]`),
//! GitLab `GET /user` (`id`), Bitbucket Cloud `GET /user` (`uuid`), Bitbucket Data Center the
//! `X-AUSERNAME` of an answer (it has no resource for the current user). When it cannot be
//! told, a new comment is added rather than anyone's edited.

use super::{CallError, Host, Kind};
use reqwest::Method;
use serde_json::{json, Value};

/// The hidden marker of benchctl's comment.
pub const MARKER: &str = "<!-- benchctl:bench -->";

/// Puts `body` (which starts with [`MARKER`]) on the open pull request of `branch`: where it
/// went (`updated on #7`), or `None` when the branch has no open pull request.
pub(super) async fn upsert(
    host: &Host,
    branch: &str,
    body: &str,
) -> Result<Option<String>, CallError> {
    match host.target.kind {
        Kind::GitHub => github(host, branch, body).await,
        Kind::GitLab => gitlab(host, branch, body).await,
        Kind::BitbucketCloud => bitbucket_cloud(host, branch, body).await,
        Kind::BitbucketDc => bitbucket_dc(host, branch, body).await,
    }
}

/// Who the token is, as the platform's comments name their author (see the module's header).
async fn own_name(host: &Host) -> Option<String> {
    let text = |v: &Value, key: &str| id_text(&v[key]);
    let get = |path: &'static str| host.send(move |h| host.request(h, Method::GET, path));
    match host.target.kind {
        Kind::GitHub => Some(match get("user").await {
            Ok(me) => text(&me, "login")?,
            Err(_) => "github-actions[bot]".to_string(),
        }),
        Kind::GitLab => text(&get("user").await.ok()?, "id"),
        Kind::BitbucketCloud => text(&get("user").await.ok()?, "uuid"),
        Kind::BitbucketDc => {
            host.header_of("rest/api/latest/application-properties", "x-ausername")
                .await
        }
    }
}

/// Whether `author` (a comment's author as the platform writes it) is the token's user.
fn by(own: &Option<String>, author: &Value) -> bool {
    own.is_some() && id_text(author) == *own
}

/// A user's name or id as text (platforms give one as a string, another as a number).
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The comment: the bench's state, address, commit, time, and the last error.
pub(super) fn body(status: &super::Status, bench_url: Option<&str>) -> String {
    let state = match status.state {
        super::State::Success => "up",
        super::State::Failure => "failed",
        super::State::Pending => "deploying",
        super::State::Inactive => "removed",
    };
    let mut text = format!("{MARKER}\n**Bench of {}**: {state}\n\n", status.issue);
    if let Some(url) = bench_url {
        text.push_str(&format!("- address: {url}\n"));
    }
    text.push_str(&format!(
        "- commit: `{}` (branch {})\n- updated: {}\n",
        crate::naming::short_commit(&status.commit),
        super::markdown::code_span(&super::markdown::no_mentions(&status.branch)),
        crate::clock::utc(crate::clock::now_unix())
    ));
    if status.state == super::State::Failure {
        let reason: String = status.description.chars().take(1000).collect();
        let reason = super::markdown::no_mentions(&reason);
        text.push_str(&format!(
            "- last error:\n\n{}\n",
            super::markdown::fenced(&reason)
        ));
    }
    text
}

fn said(updated: bool, number: &str) -> Option<String> {
    Some(format!(
        "{} on #{number}",
        if updated { "updated" } else { "added" }
    ))
}

async fn github(host: &Host, branch: &str, body: &str) -> Result<Option<String>, CallError> {
    let repo = &host.target.repo;
    let owner = repo.split('/').next().unwrap_or_default();
    let path = format!("repos/{repo}/pulls");
    let head = format!("{owner}:{branch}");
    let pulls = host
        .send(|h| {
            host.request(h, Method::GET, &path).query(&[
                ("state", "open"),
                ("head", head.as_str()),
                ("per_page", "1"),
            ])
        })
        .await?;
    let Some(n) = pulls[0]["number"].as_u64() else {
        return Ok(None);
    };
    let own = own_name(host).await;
    let mut found = None;
    for page in 1..=10 {
        let path = format!("repos/{repo}/issues/{n}/comments");
        let page_s = page.to_string();
        let list = host
            .send(|h| {
                host.request(h, Method::GET, &path)
                    .query(&[("per_page", "100"), ("page", page_s.as_str())])
            })
            .await?;
        let items = list.as_array().cloned().unwrap_or_default();
        found = items
            .iter()
            .filter(|c| by(&own, &c["user"]["login"]))
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(MARKER)))
            .and_then(|c| c["id"].as_u64());
        if found.is_some() || items.len() < 100 {
            break;
        }
    }
    let payload = json!({ "body": body });
    let edit = found.map(|id| (Method::PATCH, format!("repos/{repo}/issues/comments/{id}")));
    let create = format!("repos/{repo}/issues/{n}/comments");
    write(host, edit, &create, &payload).await?;
    Ok(said(found.is_some(), &n.to_string()))
}

async fn gitlab(host: &Host, branch: &str, body: &str) -> Result<Option<String>, CallError> {
    let project = host.target.repo.replace('/', "%2F");
    let path = format!("projects/{project}/merge_requests");
    let mrs = host
        .send(|h| {
            host.request(h, Method::GET, &path)
                .query(&[("state", "opened"), ("source_branch", branch)])
        })
        .await?;
    let Some(iid) = mrs[0]["iid"].as_u64() else {
        return Ok(None);
    };
    let notes_path = format!("projects/{project}/merge_requests/{iid}/notes");
    let notes = host
        .send(|h| {
            host.request(h, Method::GET, &notes_path)
                .query(&[("per_page", "100"), ("sort", "asc")])
        })
        .await?;
    let own = own_name(host).await;
    let found = first_with_marker(
        &notes,
        |n| by(&own, &n["author"]["id"]),
        |n| n["body"].as_str(),
        |n| n["id"].as_u64(),
    );
    let payload = json!({ "body": body });
    let edit = found.map(|id| (Method::PUT, format!("{notes_path}/{id}")));
    write(host, edit, &notes_path, &payload).await?;
    Ok(said(found.is_some(), &iid.to_string()))
}

async fn bitbucket_cloud(
    host: &Host,
    branch: &str,
    body: &str,
) -> Result<Option<String>, CallError> {
    let repo = &host.target.repo;
    let path = format!("repositories/{repo}/pullrequests");
    let q = format!("source.branch.name=\"{}\"", branch.replace('"', ""));
    let prs = host
        .send(|h| {
            host.request(h, Method::GET, &path)
                .query(&[("state", "OPEN"), ("q", q.as_str())])
        })
        .await?;
    let Some(id) = prs["values"][0]["id"].as_u64() else {
        return Ok(None);
    };
    let comments_path = format!("repositories/{repo}/pullrequests/{id}/comments");
    let list = host
        .send(|h| {
            host.request(h, Method::GET, &comments_path)
                .query(&[("pagelen", "100")])
        })
        .await?;
    let own = own_name(host).await;
    let found = first_with_marker(
        &list["values"],
        |c| by(&own, &c["user"]["uuid"]),
        |c| c["content"]["raw"].as_str(),
        |c| c["id"].as_u64(),
    );
    let payload = json!({ "content": { "raw": body } });
    let edit = found.map(|cid| (Method::PUT, format!("{comments_path}/{cid}")));
    write(host, edit, &comments_path, &payload).await?;
    Ok(said(found.is_some(), &id.to_string()))
}

async fn bitbucket_dc(host: &Host, branch: &str, body: &str) -> Result<Option<String>, CallError> {
    let (project, slug) = host
        .target
        .repo
        .split_once('/')
        .unwrap_or((host.target.repo.as_str(), ""));
    let base = format!("rest/api/latest/projects/{project}/repos/{slug}/pull-requests");
    let at = format!("refs/heads/{branch}");
    let prs = host
        .send(|h| {
            host.request(h, Method::GET, &base).query(&[
                ("state", "OPEN"),
                ("direction", "OUTGOING"),
                ("at", at.as_str()),
            ])
        })
        .await?;
    let Some(id) = prs["values"][0]["id"].as_u64() else {
        return Ok(None);
    };
    let own = own_name(host).await;
    let activities_path = format!("{base}/{id}/activities");
    let activities = host
        .send(|h| {
            host.request(h, Method::GET, &activities_path)
                .query(&[("limit", "100")])
        })
        .await?;
    let found = activities["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["action"] == "COMMENTED")
        .map(|a| &a["comment"])
        .filter(|c| by(&own, &c["author"]["name"]))
        .find(|c| c["text"].as_str().is_some_and(|t| t.contains(MARKER)))
        .and_then(|c| Some((c["id"].as_u64()?, c["version"].as_u64().unwrap_or(0))));
    // an edit names the version it read
    let payload = match found {
        Some((_, version)) => json!({ "text": body, "version": version }),
        None => json!({ "text": body }),
    };
    let edit = found.map(|(cid, _)| (Method::PUT, format!("{base}/{id}/comments/{cid}")));
    write(host, edit, &format!("{base}/{id}/comments"), &payload).await?;
    Ok(said(found.is_some(), &id.to_string()))
}

/// Edits the comment at `edit` (method and path) or, without one, creates it by `POST` to
/// `create`.
async fn write(
    host: &Host,
    edit: Option<(Method, String)>,
    create: &str,
    payload: &Value,
) -> Result<(), CallError> {
    let (method, path) = edit.unwrap_or((Method::POST, create.to_string()));
    host.send(|h| host.request(h, method.clone(), &path).json(payload))
        .await
        .map(|_| ())
}

/// The id of the first item of the array `list` that is `own` and whose text holds the marker.
fn first_with_marker(
    list: &Value,
    own: impl Fn(&Value) -> bool,
    text: impl Fn(&Value) -> Option<&str>,
    id: impl Fn(&Value) -> Option<u64>,
) -> Option<u64> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|c| own(c))
        .find(|c| text(c).is_some_and(|t| t.contains(MARKER)))
        .and_then(id)
}
