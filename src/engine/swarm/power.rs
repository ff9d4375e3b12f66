//! The swarm's power role: a sleeping bench is its service scaled to 0 replicas (the service,
//! its labels, volumes and network stay), woken by scaling it back to 1. Its inbound use is read
//! from the running task's container when that runs on the node benchctl talks to.

use super::{task_state, SwarmEngine};
use crate::engine::power::Power;
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{ServiceSpecMode, ServiceSpecModeReplicated, TaskState};

impl SwarmEngine {
    /// Sets the replicas of the service `id` (nothing when it already has them).
    async fn scale(&self, id: &str, replicas: i64) -> Result<()> {
        let Some(cur) = self.service(id).await? else {
            return Err(Error::Engine(format!(
                "swarm service {id} is gone; deploy again"
            )));
        };
        let mut spec = cur.spec.clone().unwrap_or_default();
        let now = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas);
        if now == Some(replicas) {
            return Ok(());
        }
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(replicas),
            }),
            ..Default::default()
        });
        self.put_service(spec, Some(&cur)).await.map(|_| ())
    }
}

#[async_trait]
impl Power for SwarmEngine {
    async fn stop(&self, id: &str) -> Result<()> {
        self.scale(id, 0).await
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.scale(id, 1).await
    }

    async fn inbound(&self, id: &str) -> Result<Option<crate::engine::power::Inbound>> {
        let running = self
            .tasks(id)
            .await?
            .into_iter()
            .filter(|t| task_state(t) == Some(TaskState::RUNNING))
            .find_map(|t| t.status?.container_status?.container_id);
        match running {
            // a task on another node is not known to this engine: no reading
            Some(c) => self.inner.container_inbound(&c).await,
            None => Ok(None),
        }
    }
}
