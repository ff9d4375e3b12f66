//! GitHub: a deployment per deploy of a commit, in the environment named by the issue key, its
//! statuses `in_progress`, `success` (`environment_url` = the bench), `failure`, and `inactive`
//! on teardown; a token without the deployments permission (403/404) gets commit statuses
//! (`context` = `benchctl`) instead.
//! Reference: https://docs.github.com/en/rest/deployments/deployments#create-a-deployment,
//! https://docs.github.com/en/rest/deployments/statuses#create-a-deployment-status,
//! https://docs.github.com/en/rest/commits/statuses#create-a-commit-status (API version
//! 2022-11-28). The fake in `tests/it/support/code_hosts/` checks these shapes.

use super::{cut, CallError, Host, Session, State, Status};
use serde_json::json;

/// Whether GitHub refused deployments to this token (it may still take commit statuses).
fn no_deployments(e: &CallError) -> bool {
    matches!(e.status, Some(403 | 404))
}

pub(super) async fn post(
    host: &Host,
    status: &Status,
    session: &mut Session,
) -> Result<bool, CallError> {
    let repo = &host.target.repo;
    if status.state == State::Inactive {
        return inactive(host, status).await.map(|_| true);
    }
    if !session.github_statuses && session.github_deployment.is_none() {
        match create(host, status).await {
            Ok(id) => session.github_deployment = Some(id),
            Err(e) if no_deployments(&e) => session.github_statuses = true,
            Err(e) => return Err(e),
        }
    }
    let description = cut(&status.description, 140);
    if let Some(id) = session.github_deployment {
        let state = match status.state {
            State::Pending => "in_progress",
            State::Success => "success",
            _ => "failure",
        };
        let mut body = json!({ "state": state, "description": description, "auto_inactive": true });
        if let Some(url) = &status.url {
            body["environment_url"] = json!(url);
        }
        if let Some(log) = &status.log_url {
            body["log_url"] = json!(log);
        }
        let path = format!("repos/{repo}/deployments/{id}/statuses");
        host.send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
            .await?;
        return Ok(true);
    }
    let state = match status.state {
        State::Pending => "pending",
        State::Success => "success",
        _ => "failure",
    };
    let mut body = json!({ "state": state, "description": description, "context": "benchctl" });
    if let Some(url) = status.url.as_ref().or(status.log_url.as_ref()) {
        body["target_url"] = json!(url);
    }
    let path = format!("repos/{repo}/statuses/{}", status.commit);
    host.send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
        .await?;
    Ok(true)
}

/// Creates the deployment of `status.commit` in the issue's environment: its id.
async fn create(host: &Host, status: &Status) -> Result<u64, CallError> {
    let body = json!({
        "ref": status.commit,
        "environment": status.issue,
        "description": cut(&format!("benchctl: bench of {} ({})", status.issue, status.branch), 140),
        "auto_merge": false,
        "required_contexts": [],
        "transient_environment": true,
        "production_environment": false,
    });
    let path = format!("repos/{}/deployments", host.target.repo);
    let answer = host
        .send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
        .await?;
    answer["id"].as_u64().ok_or_else(|| CallError {
        status: None,
        message: format!("github answered a deployment without an id: {answer}"),
    })
}

/// Marks every deployment of the issue's environment inactive (the bench is gone).
async fn inactive(host: &Host, status: &Status) -> Result<(), CallError> {
    let repo = &host.target.repo;
    let path = format!("repos/{repo}/deployments");
    let list = host
        .send(|h| {
            host.request(h, reqwest::Method::GET, &path)
                .query(&[("environment", status.issue.as_str()), ("per_page", "100")])
        })
        .await?;
    let body = json!({ "state": "inactive", "description": cut(&status.description, 140) });
    for id in list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_u64())
    {
        let path = format!("repos/{repo}/deployments/{id}/statuses");
        host.send(|h| host.request(h, reqwest::Method::POST, &path).json(&body))
            .await?;
    }
    Ok(())
}
