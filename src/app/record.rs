//! The result of an issue's last deploy, kept on the engine (so `status` can tell it after the
//! process that ran it is gone).

use crate::engine::{labels, Engine};
use crate::Result;
use serde::Serialize;
use std::collections::HashMap;

/// The result of an issue's last deploy, kept as labels of a never-started marker container
/// `benchctl-result-<issue>` (so `status` can tell it, and no state lives outside the engine).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastDeploy {
    /// `deployed`, `unchanged`, `skipped`, `not-linked` or `failed`.
    pub result: String,
    /// Unix seconds.
    pub at: u64,
    pub branch: String,
    #[serde(skip)]
    pub repo: String,
    pub commit: String,
    pub message: String,
}

const RESULT: &str = "benchctl.result";
const RESULT_AT: &str = "benchctl.result.at";
const RESULT_MESSAGE: &str = "benchctl.result.message";

fn result_name(issue: &str) -> String {
    format!("benchctl-result-{}", crate::naming::slug(issue, 60))
}

impl LastDeploy {
    pub async fn store(&self, engine: &Engine, issue: &str) -> Result<()> {
        let name = result_name(issue);
        let mut l = HashMap::new();
        l.insert(labels::MANAGED.to_string(), "true".to_string());
        l.insert(labels::ROLE.to_string(), "result".to_string());
        l.insert(labels::ISSUE.to_string(), issue.to_string());
        l.insert(labels::BRANCH.to_string(), labels::value(&self.branch));
        l.insert(labels::REPO.to_string(), labels::value(&self.repo));
        l.insert(labels::COMMIT.to_string(), self.commit.clone());
        l.insert(RESULT.to_string(), self.result.clone());
        l.insert(RESULT_AT.to_string(), self.at.to_string());
        l.insert(
            RESULT_MESSAGE.to_string(),
            self.message.chars().take(1000).collect(),
        );
        if let Some(old) = engine.markers.get(&name).await? {
            engine.markers.remove(&old).await?;
        }
        engine.markers.create(&name, &l).await?;
        Ok(())
    }

    /// Every issue's last deploy, found by label.
    pub async fn all(engine: &Engine) -> Result<Vec<(String, LastDeploy)>> {
        let found = engine
            .markers
            .list(&[
                format!("{}=true", labels::MANAGED),
                format!("{}=result", labels::ROLE),
            ])
            .await?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let get = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
                let issue = c.labels.get(labels::ISSUE)?.clone();
                Some((
                    issue,
                    LastDeploy {
                        result: get(RESULT),
                        at: get(RESULT_AT).parse().unwrap_or(0),
                        branch: get(labels::BRANCH),
                        repo: get(labels::REPO),
                        commit: get(labels::COMMIT),
                        message: get(RESULT_MESSAGE),
                    },
                ))
            })
            .collect())
    }

    pub async fn load(engine: &Engine, issue: &str) -> Result<Option<LastDeploy>> {
        Ok(engine.markers.get(&result_name(issue)).await?.map(|c| {
            let get = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
            LastDeploy {
                result: get(RESULT),
                at: get(RESULT_AT).parse().unwrap_or(0),
                branch: get(labels::BRANCH),
                repo: get(labels::REPO),
                commit: get(labels::COMMIT),
                message: get(RESULT_MESSAGE),
            }
        }))
    }

    pub async fn forget(engine: &Engine, issue: &str) -> Result<()> {
        if let Some(m) = engine.markers.get(&result_name(issue)).await? {
            engine.markers.remove(&m).await?;
        }
        Ok(())
    }
}
