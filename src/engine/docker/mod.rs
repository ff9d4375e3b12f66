//! The docker backend: a bench is a container, started beside the current one and renamed
//! into its place; markers are never-started containers (the engine reserves names
//! atomically). Its image role serves the swarm backend too.

mod build_bound;
mod buildkit;
mod containers;
mod copies;
mod disk;
mod extras;
mod images;
mod inbound;
mod markers;
mod power;
mod session;
mod stacks;

use super::endpoint::{engine_location, error_chain, Endpoint};
use super::{labels, ContainerInfo, Engine};
use crate::{Error, Result};
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;

pub use build_bound::{step_bound, CgroupInfo};
pub(crate) use containers::remove_container;
pub(crate) use extras::ulimits;
pub(crate) use images::{run_step, step_labels};
pub use session::SecretSource;
pub(crate) use stacks::{health as health_config, owned, volume_mounts};

pub(crate) fn parse_port(p: &str) -> Option<u16> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    (proto == "tcp").then(|| num.parse().ok()).flatten()
}

/// Options for a container's or a service's output: stdout and stderr, the last `tail` lines
/// (all without), then with `follow` what comes.
pub(crate) fn log_options(
    follow: bool,
    tail: Option<usize>,
) -> bollard::query_parameters::LogsOptions {
    let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
    LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail)
        .build()
}

/// The last `n` lines of a finite log stream (at most 5 s of it: a service's stream may stay
/// open).
pub(crate) async fn last_lines<S>(stream: S, n: usize) -> Vec<String>
where
    S: Stream<Item = std::result::Result<bollard::container::LogOutput, bollard::errors::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Ok(Some(Ok(out))) = tokio::time::timeout_at(deadline, stream.next()).await {
        text.push_str(&String::from_utf8_lossy(&out.into_bytes()));
    }
    let lines: Vec<String> = text.lines().map(|l| l.to_string()).collect();
    let skip = lines.len().saturating_sub(n);
    lines.into_iter().skip(skip).collect()
}

/// Every container (running or not) that carries all of `labels`.
pub(crate) async fn containers_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<bollard::models::ContainerSummary>> {
    let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
    let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    Ok(docker.list_containers(Some(opts)).await?)
}

/// A container's name without the leading `/` the API gives it.
pub(crate) fn plain_name(name: Option<&str>) -> String {
    name.unwrap_or_default().trim_start_matches('/').to_string()
}

#[derive(Clone)]
pub struct DockerEngine {
    pub(crate) docker: Docker,
    /// An image still used by a stopping container is left for the next clean-up instead of
    /// failing the removal (the swarm's replaced task stops after its grace period).
    leave_images_in_use: bool,
}

impl DockerEngine {
    /// Connects as the docker CLI would (`DOCKER_HOST`, else the local socket) and negotiates
    /// the API version, so engines from 20.10 on work.
    pub async fn connect() -> Result<Self> {
        let unreachable = |e: bollard::errors::Error| {
            Error::Engine(format!(
                "cannot reach the Docker engine at {}: {}; start the engine (`docker info` \
                 should work) or check DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
                engine_location(),
                error_chain(&e)
            ))
        };
        let endpoint = Endpoint::from_env(&|k| std::env::var(k).ok())?;
        let docker = endpoint.connect().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        Ok(DockerEngine {
            docker,
            leave_images_in_use: false,
        })
    }

    /// One bench per issue: a swarm service of the issue (the swarm backend's bench) on this
    /// engine stops a container bench from being made beside it.
    async fn refuse_other_backend(&self, issue: &str) -> Result<()> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels::issue_filter(issue));
        let opts = bollard::query_parameters::ListServicesOptionsBuilder::default()
            .filters(&filters)
            .build();
        // an engine outside a swarm (or a worker) answers with an error: no services there
        let services = self
            .docker
            .list_services(Some(opts))
            .await
            .unwrap_or_default();
        if services.is_empty() {
            return Ok(());
        }
        Err(Error::usage(format!(
            "{issue} already has a bench on this engine's swarm (the swarm backend); one issue \
             gets one bench: tear it down first (`benchctl --backend swarm teardown {issue}`) or \
             deploy with --backend swarm"
        )))
    }

    fn summary_to_info(c: bollard::models::ContainerSummary) -> ContainerInfo {
        let state = c.state.map(|s| s.to_string()).unwrap_or_default();
        let host_port = c
            .ports
            .unwrap_or_default()
            .into_iter()
            .find_map(|p| p.public_port);
        // engines before API 1.51 say health and exit codes only in the status text
        let status = c.status.clone().unwrap_or_default();
        let health = c
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none")
            .or_else(|| status_health(&status));
        ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: plain_name(c.names.as_ref().and_then(|n| n.first()).map(String::as_str)),
            image: c.image.unwrap_or_default(),
            image_id: c.image_id.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            running: state == "running",
            state,
            exit_code: status_exit_code(&status),
            restarts: 0,
            health,
            host_port,
            ip: None,
            created: c.created,
            host: None,
            reach_note: None,
        }
    }
}

impl DockerEngine {
    /// The engine with this backend's three roles.
    pub fn engine(self) -> Engine {
        Engine {
            images: Box::new(self.clone()),
            benches: Box::new(self.clone()),
            stacks: Box::new(self.clone()),
            power: Box::new(self.clone()),
            markers: Box::new(self),
        }
    }

    /// The image role for the swarm backend (see `leave_images_in_use`).
    pub(crate) fn swarm_images(&self) -> DockerEngine {
        DockerEngine {
            docker: self.docker.clone(),
            leave_images_in_use: true,
        }
    }
}

/// The host configuration of every bench container: its limits, no new privileges (setuid
/// binaries gain nothing), and only a web app's capabilities plus the operator's.
pub(crate) fn restricted(
    limits: &crate::engine::Limits,
    cap_add: &[String],
) -> bollard::models::HostConfig {
    bollard::models::HostConfig {
        memory: Some(limits.memory_bytes),
        nano_cpus: Some(limits.nano_cpus),
        pids_limit: Some(limits.pids),
        init: Some(false),
        security_opt: Some(vec!["no-new-privileges:true".to_string()]),
        cap_drop: Some(vec!["ALL".to_string()]),
        cap_add: Some(crate::engine::bench_capabilities(cap_add)),
        ..Default::default()
    }
}

/// The health a container's status text shows (`Up 5 seconds (healthy)`).
fn status_health(status: &str) -> Option<String> {
    let inner = status.rsplit_once('(')?.1.strip_suffix(')')?;
    match inner {
        "healthy" | "unhealthy" => Some(inner.to_string()),
        "health: starting" => Some("starting".to_string()),
        _ => None,
    }
}

/// The exit code a container's status text shows (`Exited (3) 2 minutes ago`).
fn status_exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_texts_say_health_and_exit_codes() {
        assert_eq!(
            status_health("Up 5 seconds (healthy)").as_deref(),
            Some("healthy")
        );
        assert_eq!(
            status_health("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            status_health("Up 2 hours (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(status_health("Up 2 hours"), None);
        assert_eq!(status_exit_code("Exited (0) 3 seconds ago"), Some(0));
        assert_eq!(status_exit_code("Exited (137) 1 minute ago"), Some(137));
        assert_eq!(status_exit_code("Up 2 hours"), None);
    }

    #[test]
    fn ports_parse() {
        assert_eq!(parse_port("8080/tcp"), Some(8080));
        assert_eq!(parse_port("53/udp"), None);
        assert_eq!(parse_port("80"), Some(80));
    }
}
