//! The fake code hosts' pull requests and their comments: listed by source branch, created
//! and edited as each platform's reference (in `mod.rs`) describes.

use super::{refuse, Comment, Platform, State, BOT};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Mutex;

/// Pull requests and their comments, as each platform lists, creates and edits them; `None`
/// for other paths.
pub(super) fn pulls(
    state: &Mutex<State>,
    platform: Platform,
    method: &Method,
    parts: &[&str],
    query: &std::collections::HashMap<String, String>,
    body: &Value,
) -> Option<Result<Response, String>> {
    let mut s = state.lock().unwrap();
    let q = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let open_of = |s: &State, branch: &str| s.pulls.iter().find(|(b, _)| b == branch).map(|p| p.1);
    let text_of = |v: &Value| -> Option<String> {
        match platform {
            Platform::GitHub | Platform::GitLab => v["body"].as_str().map(String::from),
            Platform::BitbucketCloud => v["content"]["raw"].as_str().map(String::from),
            Platform::BitbucketDc => v["text"].as_str().map(String::from),
        }
    };
    let list = |s: &State, pull: u64| -> Vec<Value> {
        s.comments
            .iter()
            .filter(|c| c.pull == pull)
            .map(|c| match platform {
                Platform::GitHub => json!({ "id": c.id, "body": c.body,
                    "user": { "login": c.author, "type": "User" } }),
                Platform::GitLab => json!({ "id": c.id, "body": c.body,
                    "author": { "id": if c.author == BOT { 1 } else { 2 }, "username": c.author } }),
                Platform::BitbucketCloud => json!({ "id": c.id, "content": { "raw": c.body },
                    "user": { "uuid": format!("{{{}}}", c.author) } }),
                Platform::BitbucketDc => json!({ "action": "COMMENTED",
                    "comment": { "id": c.id, "version": c.version, "text": c.body,
                        "author": { "name": c.author, "slug": c.author } } }),
            })
            .collect()
    };
    let created = |s: &mut State, pull: u64, text: String| -> Response {
        let id = 500 + s.comments.len() as u64;
        s.comments.push(Comment {
            pull,
            id,
            body: text,
            author: BOT,
            version: 0,
        });
        (
            StatusCode::CREATED,
            axum::Json(json!({ "id": id, "version": 0 })),
        )
            .into_response()
    };
    let edited = |s: &mut State, id: u64, text: String, version: Option<u64>| -> Response {
        let Some(c) = s.comments.iter_mut().find(|c| c.id == id) else {
            return refuse(StatusCode::NOT_FOUND, "no such comment");
        };
        if version.is_some_and(|v| v != c.version) {
            return refuse(StatusCode::CONFLICT, "the comment was edited meanwhile");
        }
        c.body = text;
        c.version += 1;
        axum::Json(json!({ "id": id, "version": c.version })).into_response()
    };
    let pull_of = |p: &str| p.parse::<u64>().ok();
    let found = |n: Option<u64>, key: &str| -> Vec<Value> {
        n.map(|n| json!({ key: n })).into_iter().collect()
    };
    let r = match (platform, method.as_str(), parts) {
        (Platform::GitHub, "GET", ["repos", owner, _, "pulls"]) => {
            let branch = q("head").strip_prefix(&format!("{owner}:"))?.to_string();
            let list = found(open_of(&s, &branch), "number");
            Ok(axum::Json(Value::Array(list)).into_response())
        }
        (Platform::GitHub, "GET", ["repos", _, _, "issues", n, "comments"]) => {
            Ok(axum::Json(Value::Array(list(&s, pull_of(n)?))).into_response())
        }
        (Platform::GitHub, "POST", ["repos", _, _, "issues", n, "comments"])
        | (Platform::GitLab, "POST", ["api", "v4", "projects", _, "merge_requests", n, "notes"])
        | (
            Platform::BitbucketCloud,
            "POST",
            ["2.0", "repositories", _, _, "pullrequests", n, "comments"],
        )
        | (
            Platform::BitbucketDc,
            "POST",
            ["rest", "api", "latest", "projects", _, "repos", _, "pull-requests", n, "comments"],
        ) => {
            let pull = pull_of(n)?;
            match text_of(body) {
                Some(t) => Ok(created(&mut s, pull, t)),
                None => Err("the comment's text is missing".to_string()),
            }
        }
        (Platform::GitHub, "PATCH", ["repos", _, _, "issues", "comments", id])
        | (
            Platform::GitLab,
            "PUT",
            ["api", "v4", "projects", _, "merge_requests", _, "notes", id],
        )
        | (
            Platform::BitbucketCloud,
            "PUT",
            ["2.0", "repositories", _, _, "pullrequests", _, "comments", id],
        ) => match text_of(body) {
            Some(t) => Ok(edited(&mut s, pull_of(id)?, t, None)),
            None => Err("the comment's text is missing".to_string()),
        },
        (
            Platform::BitbucketDc,
            "PUT",
            ["rest", "api", "latest", "projects", _, "repos", _, "pull-requests", _, "comments", id],
        ) => match (text_of(body), body["version"].as_u64()) {
            (Some(t), Some(v)) => Ok(edited(&mut s, pull_of(id)?, t, Some(v))),
            _ => Err("text and version are required".to_string()),
        },
        (Platform::GitLab, "GET", ["api", "v4", "projects", _, "merge_requests"]) => {
            if q("state") != "opened" {
                return Some(Err("state=opened".into()));
            }
            let list = found(open_of(&s, q("source_branch")), "iid");
            Ok(axum::Json(Value::Array(list)).into_response())
        }
        (Platform::GitLab, "GET", ["api", "v4", "projects", _, "merge_requests", n, "notes"]) => {
            Ok(axum::Json(Value::Array(list(&s, pull_of(n)?))).into_response())
        }
        (Platform::BitbucketCloud, "GET", ["2.0", "repositories", _, _, "pullrequests"]) => {
            let branch = q("q")
                .strip_prefix("source.branch.name=\"")?
                .strip_suffix('"')?
                .to_string();
            let list = found(open_of(&s, &branch), "id");
            Ok(axum::Json(json!({ "values": list })).into_response())
        }
        (
            Platform::BitbucketCloud,
            "GET",
            ["2.0", "repositories", _, _, "pullrequests", n, "comments"],
        ) => Ok(axum::Json(json!({ "values": list(&s, pull_of(n)?) })).into_response()),
        (
            Platform::BitbucketDc,
            "GET",
            ["rest", "api", "latest", "projects", _, "repos", _, "pull-requests"],
        ) => {
            if q("direction") != "OUTGOING" {
                return Some(Err("direction=OUTGOING".into()));
            }
            let branch = q("at").strip_prefix("refs/heads/")?.to_string();
            let list = found(open_of(&s, &branch), "id");
            Ok(axum::Json(json!({ "values": list })).into_response())
        }
        (
            Platform::BitbucketDc,
            "GET",
            ["rest", "api", "latest", "projects", _, "repos", _, "pull-requests", n, "activities"],
        ) => Ok(axum::Json(json!({ "values": list(&s, pull_of(n)?) })).into_response()),
        _ => return None,
    };
    Some(r)
}
