//! The Swarm backend: a bench is a one-replica Swarm service, behind the same engine roles as
//! plain containers ([`crate::engine`]). Builds and images stay on the manager node benchctl talks to; the lock
//! and result markers are swarm configs (names unique across the swarm, so benchctl processes
//! talking to different managers share each issue's lock).
//!
//! A redeploy updates the service in place (`start-first`, automatic rollback): the old task
//! keeps serving until the new one passes its health check, and a new version that fails goes
//! back to the previous one. The service's health check is the image's HEALTHCHECK, else one
//! benchctl writes with the image's own curl or wget (the readiness path), so that the swarm
//! itself gates the switch.

mod benches;
mod files;
mod markers;
mod power;
pub mod registry;
mod service;
mod stacks;

use super::docker::DockerEngine;
use super::endpoint::{engine_location, not_found};
use super::{labels, Engine};
use crate::{Error, Result};
use bollard::auth::DockerCredentials;
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{
    InspectServiceOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use std::collections::HashMap;
use std::time::Duration;

/// How long a bench's task may take to stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The local image a service runs (its id), so gc knows the image is used.
const IMAGE_ID: &str = "benchctl.image-id";
/// Where the service's health check comes from: `image`, `benchctl` or `none`.
const HEALTH: &str = "benchctl.health";

/// How a service's port is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// The routing mesh: the port answers on every node (needs IPVS on every node).
    Ingress,
    /// On the node the task runs on; the bench's address is that node's.
    Host,
}

impl std::str::FromStr for PublishMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ingress" | "mesh" => Ok(PublishMode::Ingress),
            "host" => Ok(PublishMode::Host),
            other => Err(Error::usage(format!(
                "unknown publish mode `{other}`: use `ingress` (the routing mesh) or `host`"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmOptions {
    pub publish_mode: PublishMode,
    /// Registry host (`registry.example.com:5000`) images are pushed to, so every node can
    /// pull them.
    pub registry: Option<String>,
    /// Credentials for the registry (from the environment or the docker config).
    pub credentials: Option<registry::RegistryAuth>,
}

/// Without a registry the image exists on this node only: a bigger swarm could schedule the
/// bench where the image is not.
pub fn single_node_or_registry(nodes: i64) -> Result<()> {
    if nodes > 1 {
        return Err(Error::usage(format!(
            "the swarm has {nodes} nodes, but without a registry a bench's image exists on the \
             node that builds it only: another node could not start it. Pass --registry <host> \
             (BENCHCTL_REGISTRY) so that benchctl pushes the image there and every node pulls \
             it; without a registry only a single-node swarm works"
        )));
    }
    Ok(())
}

/// Node addresses as the swarm knows them, each node asked once (a listing of many host-mode
/// benches on a few nodes).
#[derive(Default)]
struct NodeAddrs(HashMap<String, Option<String>>);

impl NodeAddrs {
    async fn addr(&mut self, docker: &Docker, node: &str) -> Option<String> {
        if let Some(known) = self.0.get(node) {
            return known.clone();
        }
        let addr = docker
            .inspect_node(node)
            .await
            .ok()
            .and_then(|n| n.status)
            .and_then(|st| st.addr)
            .filter(|a| !a.is_empty() && a != "0.0.0.0");
        self.0.insert(node.to_string(), addr.clone());
        addr
    }
}

pub struct SwarmEngine {
    inner: DockerEngine,
    opts: SwarmOptions,
}

/// The image a service spec runs.
fn spec_image(s: &bollard::models::ServiceSpec) -> String {
    s.task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

fn task_state(t: &Task) -> Option<TaskState> {
    t.status.as_ref().and_then(|s| s.state)
}

fn task_deploy_id(t: &Task) -> Option<&str> {
    t.spec
        .as_ref()?
        .container_spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(labels::DEPLOY_ID)
        .map(String::as_str)
}

impl SwarmEngine {
    /// Connects as [`DockerEngine::connect`] does; the engine must be a swarm manager.
    pub async fn connect(opts: SwarmOptions) -> Result<Self> {
        let inner = DockerEngine::connect().await?;
        let info = inner.docker.info().await?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm
            .local_node_state
            .map(|s| s.to_string())
            .unwrap_or_default();
        if state != "active" {
            return Err(Error::usage(format!(
                "--backend swarm needs a swarm, but the engine at {} is not part of one \
                 (swarm state `{}`); run `docker swarm init` there, or point DOCKER_HOST at a \
                 manager of your swarm",
                engine_location(),
                if state.is_empty() { "inactive" } else { &state }
            )));
        }
        if swarm.control_available != Some(true) {
            return Err(Error::usage(format!(
                "--backend swarm needs a manager node, but the engine at {} is a worker of its \
                 swarm; point DOCKER_HOST at a manager (`docker node ls` there lists them)",
                engine_location()
            )));
        }
        Ok(SwarmEngine { inner, opts })
    }

    fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    /// The operator's registry credentials for a request about image `reference`: none
    /// unless the image lives in that registry (the engine offers what it is given to the
    /// image's registry, which a branch's `image:` chooses).
    fn credentials_for(&self, reference: &str) -> Option<DockerCredentials> {
        let registry = self.opts.registry.as_deref()?;
        if !registry::credentials_go_with(registry, reference) {
            return None;
        }
        let auth = self.opts.credentials.as_ref()?;
        let secret = auth.password.expose().to_string();
        // a helper's `<token>` user means the secret is an identity token
        let (username, password, identitytoken) = if auth.username == "<token>" {
            (None, None, Some(secret))
        } else {
            (Some(auth.username.clone()), Some(secret), None)
        };
        Some(DockerCredentials {
            username,
            password,
            identitytoken,
            serveraddress: self.opts.registry.clone(),
            ..Default::default()
        })
    }

    async fn service(&self, id: &str) -> Result<Option<Service>> {
        match self
            .docker()
            .inspect_service(id, None::<InspectServiceOptions>)
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The services carrying all `filter` labels.
    async fn services_labelled(&self, filter: &[String]) -> Result<Vec<Service>> {
        let filters = HashMap::from([("label".to_string(), filter.to_vec())]);
        let opts = ListServicesOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self.docker().list_services(Some(opts)).await?)
    }

    /// Updates `current` to `body` (at the version read), or creates `body` when there is no
    /// current service; returns the service's id.
    async fn put_service(
        &self,
        body: bollard::models::ServiceSpec,
        current: Option<&Service>,
    ) -> Result<String> {
        match current {
            Some(cur) => {
                let auth = self.credentials_for(&spec_image(&body));
                let id = cur.id.clone().unwrap_or_default();
                let version = cur.version.as_ref().and_then(|v| v.index).unwrap_or(0);
                let opts = UpdateServiceOptionsBuilder::default()
                    .version(i32::try_from(version).unwrap_or(i32::MAX))
                    .build();
                self.docker().update_service(&id, body, opts, auth).await?;
                Ok(id)
            }
            None => {
                let auth = self.credentials_for(&spec_image(&body));
                let created = self.docker().create_service(body, auth).await?;
                Ok(created.id.unwrap_or_default())
            }
        }
    }

    /// One bench per issue: a container bench (the docker backend's) stops a service.
    async fn refuse_container_bench(&self, issue: &str) -> Result<()> {
        let containers =
            crate::engine::Benches::list(&self.inner, &labels::issue_filter(issue)).await?;
        if containers.is_empty() {
            return Ok(());
        }
        Err(Error::usage(format!(
            "{issue} already has a container bench on this engine (the docker backend); one \
             issue gets one bench: tear it down first (`benchctl --backend docker teardown \
             {issue}`) or deploy with --backend docker"
        )))
    }

    async fn tasks(&self, service_id: &str) -> Result<Vec<Task>> {
        let mut filters = HashMap::new();
        filters.insert("service".to_string(), vec![service_id.to_string()]);
        let opts = ListTasksOptionsBuilder::default().filters(&filters).build();
        Ok(self.docker().list_tasks(Some(opts)).await?)
    }

    /// The engine with this backend's roles: services for benches, configs for markers,
    /// Docker's images (on the manager benchctl talks to).
    pub fn engine(self) -> Engine {
        Engine {
            images: Box::new(self.inner.swarm_images()),
            markers: Box::new(markers::SwarmMarkers {
                containers: self.inner.clone(),
            }),
            stacks: Box::new(SwarmEngine {
                inner: self.inner.clone(),
                opts: self.opts.clone(),
            }),
            power: Box::new(SwarmEngine {
                inner: self.inner.clone(),
                opts: self.opts.clone(),
            }),
            benches: Box::new(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bigger_swarm_needs_a_registry() {
        assert!(single_node_or_registry(1).is_ok());
        let e = single_node_or_registry(3).unwrap_err().to_string();
        assert!(e.contains("3 nodes") && e.contains("--registry"), "{e}");
    }

    #[test]
    fn publish_modes_parse() {
        assert_eq!("host".parse::<PublishMode>().unwrap(), PublishMode::Host);
        assert_eq!(
            "ingress".parse::<PublishMode>().unwrap(),
            PublishMode::Ingress
        );
        assert!("bridge".parse::<PublishMode>().is_err());
    }
}
