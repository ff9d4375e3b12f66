//! Bitbucket: a build status keyed `benchctl` on the commit (`INPROGRESS`, `SUCCESSFUL` with
//! the bench's address, `FAILED`; Cloud also `STOPPED` when the bench is removed). Its `url` is
//! required: the bench's address, else the repository's page.
//! References: Cloud, https://developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/
//! (`POST /2.0/repositories/{workspace}/{repo_slug}/commit/{commit}/statuses/build`); Data
//! Center, https://developer.atlassian.com/server/bitbucket/how-tos/updating-build-status-for-commits
//! (`POST /rest/build-status/1.0/commits/{commitId}`). A token is sent as `Bearer` (access
//! tokens), or as Basic when it is `user:app-password`. The fake in
//! `tests/it/support/code_hosts/` checks these shapes.

use super::{cut, CallError, Host, Kind, State, Status};
use serde_json::json;

pub(super) async fn post(host: &Host, status: &Status) -> Result<bool, CallError> {
    let cloud = host.target.kind == Kind::BitbucketCloud;
    let state = match status.state {
        State::Pending => "INPROGRESS",
        State::Success => "SUCCESSFUL",
        State::Failure => "FAILED",
        State::Inactive if cloud => "STOPPED",
        State::Inactive => return Ok(false),
    };
    let body = json!({
        "key": "benchctl",
        "state": state,
        "name": format!("benchctl bench {}", status.issue),
        "url": status
            .url
            .clone()
            .or_else(|| status.log_url.clone())
            .unwrap_or_else(|| host.target.web.clone()),
        "description": cut(&status.description, 140),
    });
    let path = match cloud {
        true => format!(
            "repositories/{}/commit/{}/statuses/build",
            host.target.repo, status.commit
        ),
        false => format!("rest/build-status/1.0/commits/{}", status.commit),
    };
    host.send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
        .await?;
    Ok(true)
}
