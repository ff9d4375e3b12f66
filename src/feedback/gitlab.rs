//! GitLab: a commit status named `benchctl` (`running`, `success` with the bench as
//! `target_url`, `failed`). Commit statuses have no state for a removed bench; GitLab's own
//! environments (the CI recipe's `environment:url`) stop with the merge request.
//! Reference: https://docs.gitlab.com/ee/api/commits.html#set-the-pipeline-status-of-a-commit
//! (`POST /projects/:id/statuses/:sha`, `:id` the URL-encoded path, `PRIVATE-TOKEN` header).
//! The fake in `tests/it/support/code_hosts/` checks these shapes.

use super::{cut, CallError, Host, State, Status};
use serde_json::json;

pub(super) async fn post(host: &Host, status: &Status) -> Result<bool, CallError> {
    let state = match status.state {
        State::Pending => "running",
        State::Success => "success",
        State::Failure => "failed",
        State::Inactive => return Ok(false),
    };
    let mut body = json!({
        "state": state,
        "name": "benchctl",
        "ref": status.branch,
        "description": cut(&status.description, 140),
    });
    if let Some(url) = status.url.as_ref().or(status.log_url.as_ref()) {
        body["target_url"] = json!(url);
    }
    let project = host.target.repo.replace('/', "%2F");
    let path = format!("projects/{project}/statuses/{}", status.commit);
    host.send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
        .await?;
    Ok(true)
}
