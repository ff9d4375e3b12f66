//! The swarm's role for multi-service benches: the bench's attachable overlay network (services
//! reach each other by service name), its volumes as local volumes of the node benchctl talks
//! to (the services that mount them are pinned to that node, so their data stays where it
//! is), and each service a one-replica swarm service. The web service is the bench: a new
//! version updates it in place, start-first with rollback, as a single-container bench's. A
//! hook runs in the running task's container on this node, or as a one-off container on the
//! overlay network.

use super::service::{own_health, Frame};
use super::{task_state, NodeAddrs, PublishMode, SwarmEngine, HEALTH, IMAGE_ID};
use crate::engine::docker::{health_config, owned, volume_mounts};
use crate::engine::endpoint::not_found;
use crate::engine::{labels, ContainerInfo, ServiceSpec, Stacks};
use crate::output::SharedReporter;
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    Mount, MountType, NetworkAttachmentConfig, NetworkCreateRequest, Service,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The swarm's restart condition for Compose's `restart`.
fn restart_condition(policy: Option<&str>) -> TaskSpecRestartPolicyConditionEnum {
    match policy {
        Some("always" | "unless-stopped") => TaskSpecRestartPolicyConditionEnum::ANY,
        Some("on-failure") => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        _ => TaskSpecRestartPolicyConditionEnum::NONE,
    }
}

/// A service's state in the terms a multi-service deploy waits on (as a container's):
/// `(state, running, exit code)` of its newest task; a failed task the swarm will replace is
/// `restarting`.
fn task_view(
    state: Option<TaskState>,
    exit: Option<i64>,
    restarts: bool,
) -> (&'static str, bool, Option<i64>) {
    match state {
        Some(TaskState::RUNNING | TaskState::STARTING) => ("running", true, None),
        Some(TaskState::COMPLETE) => ("exited", false, Some(exit.unwrap_or(0))),
        Some(TaskState::FAILED | TaskState::REJECTED) if restarts => ("restarting", false, exit),
        Some(
            TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::SHUTDOWN
            | TaskState::ORPHANED
            | TaskState::REMOVE,
        ) => ("exited", false, Some(exit.unwrap_or(-1))),
        _ => ("created", false, None),
    }
}

impl SwarmEngine {
    /// The id of the node benchctl talks to (where the bench's volumes are).
    async fn local_node(&self) -> Result<String> {
        let info = self.docker().info().await?;
        Ok(info.swarm.and_then(|s| s.node_id).unwrap_or_default())
    }

    /// The swarm service of `spec`: its image (pushed to the registry when benchctl built it
    /// and there is one), configuration, the bench's restrictions and limits, its network and
    /// aliases, and, for the web service, the published port and the update that gates the
    /// switch on its health check.
    async fn stack_service(&self, spec: &ServiceSpec) -> Result<bollard::models::ServiceSpec> {
        let local = self.docker().inspect_image(&spec.image).await?;
        let image_id = local.id.clone().unwrap_or_default();
        let built = local
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .is_some_and(|l| l.contains_key(labels::MANAGED));
        let reference = match (&self.opts.registry, built) {
            (Some(r), true) => self.push(r, &spec.image, &image_id).await?,
            _ => spec.image.clone(),
        };
        let mut service_labels = spec.labels.clone();
        service_labels.insert(IMAGE_ID.to_string(), image_id);
        let (health, from) = match (&spec.health, &spec.probe) {
            (Some(h), _) => (Some(health_config(h)), "compose"),
            // the web service without a check of its own: benchctl's, asking the probe's path
            (None, Some(web)) => {
                self.health_check(&local, &spec.image, &spec.labels, web)
                    .await?
            }
            (None, None) => (None, if own_health(&local) { "image" } else { "none" }),
        };
        service_labels.insert(HEALTH.to_string(), from.to_string());
        // the tasks' containers carry the deploy's id only: the docker backend must not take
        // them for benches of its own
        let mut task_labels = HashMap::new();
        if let Some(d) = spec.labels.get(labels::DEPLOY_ID) {
            task_labels.insert(labels::DEPLOY_ID.to_string(), d.clone());
        }
        let mut mounts = volume_mounts(spec);
        mounts.extend(spec.tmpfs.iter().map(|t| Mount {
            target: Some(t.clone()),
            typ: Some(MountType::TMPFS),
            ..Default::default()
        }));
        // a service keeping data in a volume runs where the volume is
        let placement = match spec.mounts.iter().any(|m| m.volume.is_some()) {
            true => Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={}", self.local_node().await?)]),
                ..Default::default()
            }),
            false => None,
        };
        // services find each other by DNS, resolving to their tasks' own addresses: a virtual
        // IP needs IPVS on every node, which the ingress routing mesh needs anyway
        let ingress = spec.publish.is_some() && self.opts.publish_mode == PublishMode::Ingress;
        let endpoint = EndpointSpec {
            mode: Some(match ingress {
                true => EndpointSpecModeEnum::VIP,
                false => EndpointSpecModeEnum::DNSRR,
            }),
            ports: spec.publish.as_ref().map(|(port, _)| {
                vec![EndpointPortConfig {
                    target_port: Some((*port).into()),
                    publish_mode: Some(match ingress {
                        true => EndpointPortConfigPublishModeEnum::INGRESS,
                        false => EndpointPortConfigPublishModeEnum::HOST,
                    }),
                    ..Default::default()
                }]
            }),
        };
        let mut networks = vec![NetworkAttachmentConfig {
            target: Some(spec.network.clone()),
            aliases: Some(spec.aliases.clone()),
            driver_opts: None,
        }];
        networks.extend(
            spec.extras
                .networks
                .iter()
                .map(|(n, aliases)| NetworkAttachmentConfig {
                    target: Some(n.clone()),
                    aliases: Some(aliases.clone()),
                    driver_opts: None,
                }),
        );
        networks.extend(spec.proxy_network.iter().map(|n| NetworkAttachmentConfig {
            target: Some(n.clone()),
            aliases: None,
            driver_opts: None,
        }));
        let gated = from != "none";
        let configs = self.files(spec).await?;
        let mut container = TaskSpecContainerSpec {
            image: Some(reference),
            labels: Some(task_labels),
            command: spec.entrypoint.clone(),
            args: spec.cmd.clone(),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            mounts: (!mounts.is_empty()).then_some(mounts),
            health_check: health,
            configs: (!configs.is_empty()).then_some(configs),
            ..Default::default()
        };
        super::files::extras(&spec.extras, &mut container);
        let frame = Frame {
            name: spec.name.clone(),
            labels: service_labels,
            container,
            networks,
            placement,
            endpoint: Some(endpoint),
            limits: &spec.limits,
            cap_add: &spec.cap_add,
            cap_drop: &spec.extras.cap_drop,
            // memory is held for each service; CPU only limited (a bench of several services,
            // updated start-first, would not fit a small node otherwise)
            reserve_cpu: false,
            restart: restart_condition(spec.restart.as_deref()),
            gated,
        };
        Ok(frame.spec())
    }

    /// A service of a multi-service bench as its deploy waits on it: its newest task's state,
    /// its health (a task with a health check runs once it passes), its published port.
    async fn describe_service(&self, s: Service, nodes: &mut NodeAddrs) -> Result<ContainerInfo> {
        let role = s
            .spec
            .as_ref()
            .and_then(|sp| sp.labels.as_ref())
            .map(|l| labels::role(l).is_none());
        if role == Some(true) {
            // the web service is the bench: described as one
            return self.describe(s, nodes).await;
        }
        let id = s.id.clone().unwrap_or_default();
        let spec = s.spec.clone().unwrap_or_default();
        let service_labels = spec.labels.clone().unwrap_or_default();
        let task_spec = spec.task_template.unwrap_or_default();
        let container = task_spec.container_spec.unwrap_or_default();
        // the engine reads a service's health check back under another key than the one it
        // takes: the label benchctl wrote says whether there is one
        let checked = service_labels.get(HEALTH).is_some_and(|h| h != "none");
        let restarts = task_spec
            .restart_policy
            .and_then(|r| r.condition)
            .is_some_and(|c| c != TaskSpecRestartPolicyConditionEnum::NONE);
        let mut tasks = self.tasks(&id).await?;
        tasks.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        let newest = tasks.first();
        let status = newest.and_then(|t| t.status.clone()).unwrap_or_default();
        let exit = status.container_status.and_then(|c| c.exit_code);
        let state = newest.and_then(task_state);
        let (shown, running, exit_code) = task_view(state, exit, restarts);
        let health = match (checked, state) {
            (true, Some(TaskState::RUNNING)) => Some("healthy".to_string()),
            (true, Some(TaskState::STARTING)) => Some("starting".to_string()),
            _ => None,
        };
        let failed = tasks
            .iter()
            .filter(|t| matches!(task_state(t), Some(TaskState::FAILED)))
            .count();
        Ok(ContainerInfo {
            id,
            name: spec.name.unwrap_or_default(),
            image: container.image.unwrap_or_default(),
            image_id: service_labels.get(IMAGE_ID).cloned().unwrap_or_default(),
            labels: service_labels,
            // why a task is not running yet (no node fits, no image): said beside `created`
            state: match status.err.filter(|e| !e.is_empty() && shown == "created") {
                Some(err) => format!("{shown}: {err}"),
                None => shown.to_string(),
            },
            running,
            exit_code,
            restarts: failed as i64,
            health,
            host_port: None,
            ip: None,
            created: None,
            host: None,
            reach_note: None,
        })
    }

    /// The container of service `id`'s running task, on the node benchctl talks to.
    async fn task_container(&self, id: &str) -> Result<String> {
        let here = self.local_node().await?;
        let mut tasks = self.tasks(id).await?;
        tasks.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        let task = tasks
            .iter()
            .find(|t| task_state(t) == Some(TaskState::RUNNING))
            .ok_or_else(|| Error::Engine(format!("service {id} has no running task")))?;
        if task.node_id.as_deref() != Some(here.as_str()) {
            return Err(Error::usage(format!(
                "service {id} runs on another node of the swarm than the one benchctl talks to, \
                 where a hook cannot reach it; give the hook `run = \"one-off\"` in \
                 benchctl.toml (a container of the service's image on the bench's network)"
            )));
        }
        task.status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.clone())
            .ok_or_else(|| {
                Error::Engine(format!(
                    "the running task of service {id} names no container"
                ))
            })
    }
}

/// Tries `step` until it succeeds or ten seconds have passed: the swarm detaches a removed
/// service's tasks from networks and volumes a moment after the removal returns.
async fn retrying<T, F, Fut>(mut step: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// What a swarm bench does not run yet, refused by its Compose name rather than dropped.
fn refuse_unsupported(spec: &ServiceSpec) -> Result<()> {
    let keys = super::files::unsupported(&spec.extras);
    if keys.is_empty() {
        return Ok(());
    }
    // the first name a service answers to is its own
    let service = spec.aliases.first();
    Err(crate::Error::usage(format!(
        "service `{}` uses {}, which benchctl runs on a single engine (`--backend docker`) \
         but not on a swarm: remove {} from the Compose file or deploy to containers",
        service.map(String::as_str).unwrap_or(&spec.name),
        keys.join(", "),
        if keys.len() == 1 { "it" } else { "them" }
    )))
}

#[async_trait]
impl Stacks for SwarmEngine {
    async fn ensure_network(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        let opts = None::<bollard::query_parameters::InspectNetworkOptions>;
        match self.docker().inspect_network(name, opts).await {
            Ok(n) => return owned(name, "network", n.labels.as_ref(), labels),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        // attachable: a one-off hook's plain container joins it too
        let internal = labels.get(labels::INTERNAL).map(String::as_str) == Some("true");
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            internal: Some(internal),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker().create_network(req).await?;
        Ok(())
    }

    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        Stacks::ensure_volume(&self.inner, name, labels).await
    }

    async fn run_service(&self, spec: &ServiceSpec) -> Result<String> {
        refuse_unsupported(spec)?;
        let current = match &spec.replaces {
            Some(id) => self.service(id).await?,
            None => {
                if let (Some(_), Some(issue)) = (&spec.probe, spec.labels.get(labels::ISSUE)) {
                    self.refuse_container_bench(issue).await?;
                }
                None
            }
        };
        let mut spec = spec.clone();
        if let Some(name) = current.as_ref().and_then(|c| c.spec.as_ref()?.name.clone()) {
            spec.name = name;
        }
        let body = self.stack_service(&spec).await?;
        self.put_service(body, current.as_ref()).await
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        match self.service(id).await? {
            Some(s) => Ok(Some(
                self.describe_service(s, &mut NodeAddrs::default()).await?,
            )),
            None => Ok(None),
        }
    }

    async fn services(&self, filter: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut out = Vec::new();
        let mut nodes = NodeAddrs::default();
        for s in self.services_labelled(filter).await? {
            out.push(self.describe_service(s, &mut nodes).await?);
        }
        Ok(out)
    }

    async fn run_once(
        &self,
        spec: &ServiceSpec,
        timeout: Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)> {
        // a plain container on this node (where the volumes are), on the attachable network
        Stacks::run_once(&self.inner, spec, timeout, reporter).await
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)> {
        let container = self.task_container(id).await?;
        Stacks::exec(&self.inner, &container, cmd, timeout, reporter).await
    }

    fn kind(&self) -> &'static str {
        "swarm"
    }

    async fn remove_hooks(&self, filter: &[String]) -> Result<Vec<String>> {
        Stacks::remove_hooks(&self.inner, filter).await
    }

    async fn networks(&self, filter: &[String]) -> Result<Vec<(String, HashMap<String, String>)>> {
        Stacks::networks(&self.inner, filter).await
    }

    async fn volumes(&self, filter: &[String]) -> Result<Vec<(String, HashMap<String, String>)>> {
        Stacks::volumes(&self.inner, filter).await
    }

    async fn remove_networks(&self, filter: &[String]) -> Result<Vec<String>> {
        retrying(|| Stacks::remove_networks(&self.inner, filter)).await
    }

    async fn remove_volumes(&self, filter: &[String]) -> Result<Vec<String>> {
        retrying(|| Stacks::remove_volumes(&self.inner, filter)).await
    }

    async fn remove_files(&self, filter: &[String]) -> Result<Vec<String>> {
        retrying(|| self.remove_configs(filter)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_restart_policies_map_to_the_swarm_s() {
        use TaskSpecRestartPolicyConditionEnum as C;
        assert_eq!(restart_condition(None), C::NONE);
        assert_eq!(restart_condition(Some("no")), C::NONE);
        assert_eq!(restart_condition(Some("always")), C::ANY);
        assert_eq!(restart_condition(Some("unless-stopped")), C::ANY);
        assert_eq!(restart_condition(Some("on-failure")), C::ON_FAILURE);
    }

    #[test]
    fn tasks_read_as_containers_for_the_conditions_a_deploy_waits_on() {
        assert_eq!(
            task_view(Some(TaskState::RUNNING), None, false),
            ("running", true, None)
        );
        assert_eq!(
            task_view(Some(TaskState::COMPLETE), None, false),
            ("exited", false, Some(0))
        );
        assert_eq!(
            task_view(Some(TaskState::FAILED), Some(3), false),
            ("exited", false, Some(3))
        );
        // the swarm will start another task: not a failure yet
        assert_eq!(
            task_view(Some(TaskState::FAILED), Some(3), true),
            ("restarting", false, Some(3))
        );
        assert_eq!(
            task_view(Some(TaskState::PENDING), None, false),
            ("created", false, None)
        );
        assert_eq!(task_view(None, None, false), ("created", false, None));
    }
}
