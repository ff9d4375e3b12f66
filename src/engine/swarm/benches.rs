//! The swarm's bench role: a bench is a one-replica service; a new version is an update of it
//! (start-first, rolled back when it fails), so promoting it is a no-op.

use super::{single_node_or_registry, task_state, NodeAddrs, SwarmEngine};
use crate::engine::docker::last_lines;
use crate::engine::docker::log_options;
use crate::engine::endpoint::not_found;
use crate::engine::{labels, Benches, ContainerInfo, ContainerSpec, LogStream};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{ServiceUpdateStatusStateEnum, TaskState};
use bollard::query_parameters::{ListContainersOptionsBuilder, UpdateServiceOptionsBuilder};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[async_trait]
impl Benches for SwarmEngine {
    async fn check_can_run(&self) -> Result<()> {
        if self.opts.registry.is_some() {
            return Ok(());
        }
        let info = self.docker().info().await?;
        single_node_or_registry(info.swarm.and_then(|s| s.nodes).unwrap_or(1))
    }

    fn shape(&self) -> String {
        format!(
            "swarm|{:?}|{}",
            self.opts.publish_mode,
            self.opts.registry.as_deref().unwrap_or("")
        )
    }

    async fn start(&self, spec: &ContainerSpec) -> Result<String> {
        if let Some(issue) = spec.labels.get(labels::ISSUE) {
            self.refuse_container_bench(issue).await?;
        }
        let current = match &spec.replaces {
            Some(id) => self.service(id).await?,
            None => None,
        };
        let name = current
            .as_ref()
            .and_then(|c| c.spec.as_ref()?.name.clone())
            .unwrap_or_else(|| spec.name.clone());
        let body = self.service_spec(spec, &name).await?;
        self.put_service(body, current.as_ref()).await
    }

    async fn promote(&self, id: &str, name: &str) -> Result<()> {
        match self.service(id).await? {
            Some(s) if s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name) => Ok(()),
            Some(_) => Err(Error::Engine(format!(
                "swarm service {id} cannot be renamed to {name}; remove it (`benchctl gc`)"
            ))),
            None => Err(Error::Engine(format!(
                "swarm service {id} is gone; deploy again"
            ))),
        }
    }

    async fn discard(&self, id: &str) -> Result<()> {
        let Some(s) = self.service(id).await? else {
            return Ok(());
        };
        let state = s.update_status.as_ref().and_then(|u| u.state);
        match state {
            // created by the failed deploy: nothing to go back to
            None => self.remove(id).await,
            Some(
                ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED,
            ) => self.await_rollback(id, Duration::from_secs(120)).await,
            Some(_) => {
                let version = s.version.and_then(|v| v.index).unwrap_or(0);
                let mut opts = UpdateServiceOptionsBuilder::default()
                    .version(i32::try_from(version).unwrap_or(i32::MAX))
                    .build();
                opts.rollback = Some("previous".to_string());
                let spec = s.spec.unwrap_or_default();
                let auth = self.credentials_for(&super::spec_image(&spec));
                match self.docker().update_service(id, spec, opts, auth).await {
                    Ok(_) => {}
                    // the swarm rolled back on its own meanwhile (the version moved on)
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 500 | 409,
                        ..
                    }) => {}
                    Err(e) => return Err(e.into()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.await_rollback(id, Duration::from_secs(120)).await
            }
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        if self.service(id).await?.is_none() {
            return Ok(());
        }
        let live: Vec<String> = self
            .tasks(id)
            .await?
            .into_iter()
            .filter(|t| {
                !matches!(
                    task_state(t),
                    Some(
                        TaskState::COMPLETE
                            | TaskState::SHUTDOWN
                            | TaskState::FAILED
                            | TaskState::REJECTED
                            | TaskState::ORPHANED
                    )
                )
            })
            .filter_map(|t| t.id)
            .collect();
        match self.docker().delete_service(id).await {
            Ok(()) => {}
            Err(e) if not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // the swarm stops the tasks after the call returns, on whichever node they run: wait
        // until each has stopped (a removed bench answers no more), so that images can go too
        let deadline = Instant::now() + Duration::from_secs(30);
        for task in &live {
            while Instant::now() < deadline {
                match self.docker().inspect_task(task).await {
                    Ok(t)
                        if matches!(
                            task_state(&t),
                            Some(TaskState::RUNNING | TaskState::STARTING | TaskState::PREPARING)
                        ) => {}
                    _ => break,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("com.docker.swarm.service.id={id}")],
        );
        let opts = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let left = self.docker().list_containers(Some(opts.clone())).await?;
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        match self.service(id).await? {
            Some(s) => Ok(Some(self.describe(s, &mut NodeAddrs::default()).await?)),
            None => Ok(None),
        }
    }

    async fn list(&self, filter: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        let mut nodes = NodeAddrs::default();
        for s in self.services_labelled(filter).await? {
            out.push(self.describe(s, &mut nodes).await?);
        }
        Ok(out)
    }

    async fn logs_tail(&self, id: &str, n: usize) -> Result<Vec<String>> {
        if self.service(id).await?.is_none() {
            return Ok(Vec::new());
        }
        let stream = self
            .docker()
            .service_logs(id, Some(log_options(false, Some(n))));
        Ok(last_lines(stream, n).await)
    }

    fn logs(&self, id: &str, follow: bool, tail: Option<usize>) -> LogStream {
        let stream = self
            .docker()
            .service_logs(id, Some(log_options(follow, tail)));
        Box::pin(stream.map(|item| item.map(|o| o.into_bytes()).map_err(Error::from)))
    }
}
