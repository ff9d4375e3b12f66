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
    /// The deploys before it, newest first (up to [`EARLIER`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Earlier>,
}

/// An earlier deploy of the issue.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Earlier {
    pub at: u64,
    pub result: String,
    pub commit: String,
}

/// How many earlier deploys a record keeps.
pub const EARLIER: usize = 5;

const RESULT: &str = "benchctl.result";
const RESULT_EARLIER: &str = "benchctl.result.earlier";
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
        let mut earlier = Vec::new();
        if let Some(old) = engine.markers.get(&name).await? {
            let before = Self::from_labels(&old.labels);
            earlier.push(Earlier {
                at: before.at,
                result: before.result,
                commit: before.commit,
            });
            earlier.extend(before.earlier);
            engine.markers.remove(&old).await?;
        }
        earlier.truncate(EARLIER);
        let text: Vec<String> = earlier
            .iter()
            .map(|e| format!("{} {} {}", e.at, e.result, e.commit))
            .collect();
        l.insert(RESULT_EARLIER.to_string(), text.join(";"));
        engine.markers.create(&name, &l).await?;
        Ok(())
    }

    /// The record a result marker's labels hold.
    fn from_labels(l: &HashMap<String, String>) -> LastDeploy {
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        LastDeploy {
            result: get(RESULT),
            at: get(RESULT_AT).parse().unwrap_or(0),
            branch: get(labels::BRANCH),
            repo: get(labels::REPO),
            commit: get(labels::COMMIT),
            message: get(RESULT_MESSAGE),
            earlier: get(RESULT_EARLIER)
                .split(';')
                .filter_map(|e| {
                    let mut parts = e.split(' ');
                    Some(Earlier {
                        at: parts.next()?.parse().ok()?,
                        result: parts.next()?.to_string(),
                        commit: parts.next().unwrap_or_default().to_string(),
                    })
                })
                .collect(),
        }
    }

    /// Every issue's last deploy, found by label.
    pub async fn all(engine: &Engine) -> Result<Vec<(String, LastDeploy)>> {
        let found = engine.markers.list(&labels::role_filter("result")).await?;
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let issue = c.labels.get(labels::ISSUE)?.clone();
                Some((issue, Self::from_labels(&c.labels)))
            })
            .collect())
    }

    pub async fn load(engine: &Engine, issue: &str) -> Result<Option<LastDeploy>> {
        Ok(engine
            .markers
            .get(&result_name(issue))
            .await?
            .map(|c| Self::from_labels(&c.labels)))
    }

    pub async fn forget(engine: &Engine, issue: &str) -> Result<()> {
        if let Some(m) = engine.markers.get(&result_name(issue)).await? {
            engine.markers.remove(&m).await?;
        }
        Ok(())
    }
}
