//! Docker's bench role: a bench is a container; a new version starts beside the current one
//! under a `-next-` name and is renamed into its place once it answers.

use super::{last_lines, log_options, DockerEngine};
use crate::engine::endpoint::not_found;
use crate::engine::{labels, Benches, ContainerInfo, ContainerSpec, LogStream};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;

/// Removes a container (stopping it first); one already gone is not an error. When the engine
/// says a removal is in progress (another remover, or a start racing this removal), it waits
/// until the container is gone, trying again: an interrupted deploy must not leave a created
/// container behind.
pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<()> {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    for _ in 0..40 {
        match docker.remove_container(id, Some(opts.clone())).await {
            Ok(()) => {}
            Err(e) if not_found(&e) => return Ok(()),
            // "removal already in progress", or a conflict with a start in flight
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        match docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Err(e) if not_found(&e) => return Ok(()),
            _ => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    Ok(())
}

/// The container name of a bench's new version: beside the bench it `replaces`, a name of its
/// own (`<name>-next-<random>`, renamed into place once it answers), else `name`.
pub(crate) fn candidate_name(name: &str, replaces: bool) -> String {
    match replaces {
        true => format!("{name}-next-{:08x}", rand::random::<u32>()),
        false => name.to_string(),
    }
}

/// What a container gets between its creation and its start.
#[derive(Default)]
pub(crate) struct Before<'a> {
    /// Networks joined besides the first, each with the names answered to there.
    pub networks: Vec<(&'a str, Vec<String>)>,
    pub copies: &'a [crate::engine::CopySpec],
    /// The platform it must run on (`linux/amd64`).
    pub platform: Option<&'a str>,
}

/// The shortest interval of a health check the engine runs for a bench: a branch's `1ms`
/// would be an exec storm outside the bench's cgroup.
pub(crate) const HEALTH_FLOOR: std::time::Duration = std::time::Duration::from_secs(1);

/// Raises the health check's intervals (the file's, else the image's `HEALTHCHECK`) to
/// [`HEALTH_FLOOR`]; `0` (the engine's default) stays.
async fn floor_health(docker: &Docker, body: &mut ContainerCreateBody) -> Result<()> {
    let floor = HEALTH_FLOOR.as_nanos() as i64;
    let raise = |v: &mut Option<i64>| {
        if let Some(n) = v.as_mut().filter(|n| **n > 0 && **n < floor) {
            *n = floor;
        }
    };
    let mut check = match body.healthcheck.take() {
        Some(h) => h,
        None => {
            let image = body.image.clone().unwrap_or_default();
            match docker.inspect_image(&image).await {
                Ok(i) => match i.config.and_then(|c| c.healthcheck) {
                    Some(h) => h,
                    None => return Ok(()),
                },
                // the create that follows says what is wrong with the image
                Err(_) => return Ok(()),
            }
        }
    };
    for v in [
        &mut check.interval,
        &mut check.timeout,
        &mut check.start_period,
        &mut check.start_interval,
    ] {
        raise(v);
    }
    body.healthcheck = Some(check);
    Ok(())
}

/// Creates the container `name` (on `before.platform`), connects it to `before.networks`
/// (besides the one it is created on: an engine before API 1.44 takes one at creation), puts
/// `before.copies` in and starts it; one that cannot start is removed again.
pub(crate) async fn create_and_start(
    docker: &Docker,
    name: &str,
    mut body: ContainerCreateBody,
    before: Before<'_>,
) -> Result<String> {
    floor_health(docker, &mut body).await?;
    let mut opts = CreateContainerOptionsBuilder::default().name(name);
    if let Some(p) = before.platform {
        opts = opts.platform(p);
    }
    let created = docker.create_container(Some(opts.build()), body).await?;
    let prepared = async {
        for (network, aliases) in &before.networks {
            let request = bollard::models::NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(bollard::models::EndpointSettings {
                    aliases: (!aliases.is_empty()).then(|| aliases.clone()),
                    ..Default::default()
                }),
            };
            docker.connect_network(network, request).await?;
        }
        super::copies::upload(docker, &created.id, before.copies).await?;
        docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await?;
        Ok::<_, crate::Error>(())
    };
    if let Err(e) = prepared.await {
        let _ = remove_container(docker, &created.id).await;
        return Err(e);
    }
    Ok(created.id)
}

#[async_trait]
impl Benches for DockerEngine {
    async fn start(&self, spec: &ContainerSpec) -> Result<String> {
        if let Some(issue) = spec.labels.get(labels::ISSUE) {
            self.refuse_other_backend(issue).await?;
        }
        let port_key = format!("{}/tcp", spec.container_port);
        let mut bindings = HashMap::new();
        bindings.insert(
            port_key.clone(),
            Some(vec![PortBinding {
                host_ip: Some(spec.bind.clone()),
                host_port: Some(String::new()),
            }]),
        );
        // behind a router: its network; else the bench's own, publishing the port
        let network = match (&spec.network, &spec.own_network) {
            (Some(n), _) => Some(n.clone()),
            (None, Some((own, labels))) => {
                crate::engine::Stacks::ensure_network(self, own, labels).await?;
                Some(own.clone())
            }
            (None, None) => None,
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(HostConfig {
                port_bindings: spec.network.is_none().then_some(bindings),
                network_mode: network,
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..super::restricted(&spec.limits, &spec.cap_add)
            }),
            ..Default::default()
        };
        let name = candidate_name(&spec.name, spec.replaces.is_some());
        create_and_start(&self.docker, &name, body, Default::default()).await
    }

    async fn promote(&self, id: &str, name: &str) -> Result<()> {
        let current = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await?;
        if current.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(name) {
            return Ok(());
        }
        let opts = RenameContainerOptionsBuilder::default().name(name).build();
        self.docker.rename_container(id, opts).await?;
        Ok(())
    }

    async fn discard(&self, id: &str) -> Result<()> {
        remove_container(&self.docker, id).await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        remove_container(&self.docker, id).await
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let c = match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => c,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let state = c.state.unwrap_or_default();
        let net = c.network_settings.unwrap_or_default();
        let host_port = net
            .ports
            .unwrap_or_default()
            .into_values()
            .flatten()
            .flatten()
            .find_map(|b| b.host_port.and_then(|p| p.parse().ok()));
        let ip = net
            .networks
            .unwrap_or_default()
            .into_values()
            .find_map(|n| n.ip_address.filter(|a| !a.is_empty()));
        let cfg = c.config.unwrap_or_default();
        Ok(Some(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: super::plain_name(c.name.as_deref()),
            image: cfg.image.unwrap_or_default(),
            image_id: c.image.unwrap_or_default(),
            labels: cfg.labels.unwrap_or_default(),
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code,
            restarts: c.restart_count.unwrap_or(0),
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            host_port,
            ip,
            created: None,
            host: None,
            reach_note: None,
        }))
    }

    async fn list(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        Ok(super::containers_labelled(&self.docker, labels)
            .await?
            .into_iter()
            .map(Self::summary_to_info)
            // a swarm task inherits its image's labels, but the swarm backend owns it
            .filter(|c| !c.labels.contains_key("com.docker.swarm.task.id"))
            // markers are not benches
            .filter(|c| labels::role(&c.labels).is_none())
            .collect())
    }

    async fn logs_tail(&self, id: &str, n: usize) -> Result<Vec<String>> {
        let stream = self.docker.logs(id, Some(log_options(false, Some(n))));
        Ok(last_lines(stream, n).await)
    }

    fn logs(&self, id: &str, follow: bool, tail: Option<usize>) -> LogStream {
        let stream = self.docker.logs(id, Some(log_options(follow, tail)));
        Box::pin(stream.map(|item| item.map(|o| o.into_bytes()).map_err(Error::from)))
    }
}
