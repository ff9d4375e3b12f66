//! Building and reading services: the image pushed to the registry, the health check that
//! gates the switch, the service's spec, and a service described as a bench.

use super::{
    nanos, task_deploy_id, task_state, NodeAddrs, PublishMode, SwarmEngine, HEALTH, IMAGE_ID,
    STOP_GRACE,
};
use crate::engine::docker::{remove_container, run_step, step_labels};
use crate::engine::endpoint::describe_engine_error;
use crate::engine::{labels, ContainerInfo, ContainerSpec, Limits, WebProbe};
use crate::{Error, Result};
use bollard::models::{
    ContainerCreateBody, EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec,
    HealthConfig, Limit, NetworkAttachmentConfig, ResourceObject, Service, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecPrivileges, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, PushImageOptionsBuilder,
    TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What every bench's service is made of besides its container's own configuration: one
/// replica; a container bench's restrictions (no new privileges, a web app's capabilities); its
/// limits, memory held for it (and CPU with `reserve_cpu`); and an update that starts the new
/// task first and rolls back when it fails.
pub(super) struct Frame<'a> {
    pub name: String,
    pub labels: HashMap<String, String>,
    /// Image, labels, environment, command, health check, mounts.
    pub container: TaskSpecContainerSpec,
    /// An empty list: the swarm's default.
    pub networks: Vec<NetworkAttachmentConfig>,
    pub placement: Option<TaskSpecPlacement>,
    pub endpoint: Option<EndpointSpec>,
    pub limits: &'a Limits,
    pub cap_add: &'a [String],
    /// Capabilities the service drops from the bench's.
    pub cap_drop: &'a [String],
    pub reserve_cpu: bool,
    pub restart: TaskSpecRestartPolicyConditionEnum,
    /// Whether a health check gates a new task (else a crash soon after its start must show:
    /// the update watches it longer).
    pub gated: bool,
}

impl Frame<'_> {
    pub(super) fn spec(self) -> ServiceSpec {
        // how long a new task is watched for failure before the update counts as done
        let monitor = nanos(match self.gated {
            true => Duration::from_millis(250),
            false => Duration::from_secs(5),
        });
        let limits = self.limits;
        let mut caps = crate::engine::bench_capabilities(self.cap_add);
        caps.retain(|c| !self.cap_drop.contains(c));
        let container = TaskSpecContainerSpec {
            init: self.container.init.or(Some(false)),
            stop_grace_period: self.container.stop_grace_period.or(Some(nanos(STOP_GRACE))),
            // as a container bench; engines before API 1.44 ignore NoNewPrivileges
            capability_drop: Some(vec!["ALL".to_string()]),
            capability_add: Some(caps),
            privileges: Some(TaskSpecContainerSpecPrivileges {
                no_new_privileges: Some(true),
                ..Default::default()
            }),
            ..self.container
        };
        ServiceSpec {
            name: Some(self.name),
            labels: Some(self.labels),
            task_template: Some(TaskSpec {
                container_spec: Some(container),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: Some(limits.nano_cpus),
                        memory_bytes: Some(limits.memory_bytes),
                        pids: Some(limits.pids),
                    }),
                    reservations: Some(ResourceObject {
                        nano_cpus: self.reserve_cpu.then_some(limits.nano_cpus),
                        memory_bytes: Some(limits.memory_bytes),
                        generic_resources: None,
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(self.restart),
                    delay: Some(nanos(Duration::from_secs(2))),
                    max_attempts: None,
                    window: None,
                }),
                placement: self.placement,
                networks: (!self.networks.is_empty()).then_some(self.networks),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(1),
                delay: Some(0),
                failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
                monitor: Some(monitor),
                max_failure_ratio: Some(0.0),
                order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            }),
            rollback_config: Some(ServiceSpecRollbackConfig {
                parallelism: Some(1),
                delay: Some(0),
                failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
                monitor: Some(monitor),
                max_failure_ratio: Some(0.0),
                order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
            }),
            networks: None,
            endpoint_spec: self.endpoint,
        }
    }
}

/// Whether the image has a HEALTHCHECK of its own.
pub(super) fn own_health(inspected: &bollard::models::ImageInspect) -> bool {
    inspected
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| !t.is_empty() && t[0] != "NONE")
}

impl SwarmEngine {
    /// Pushes the image to the registry; returns the reference every node can pull
    /// (`registry/repo:tag@sha256:...`).
    pub(super) async fn push(&self, registry: &str, image: &str, image_id: &str) -> Result<String> {
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let remote_repo = format!("{registry}/{repo}");
        let opts = TagImageOptionsBuilder::default()
            .repo(&remote_repo)
            .tag(tag)
            .build();
        self.docker().tag_image(image_id, Some(opts)).await?;
        let opts = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream =
            self.docker()
                .push_image(&remote_repo, Some(opts), self.credentials_for(&remote_repo));
        while let Some(item) = stream.next().await {
            let failed = |message: String| {
                Error::Engine(format!(
                    "cannot push {remote_repo}:{tag} to the registry {registry}: {message}; \
                     check that the registry runs and accepts pushes (credentials from \
                     BENCHCTL_REGISTRY_USER and BENCHCTL_REGISTRY_PASSWORD, or `docker login \
                     {registry}`)"
                ))
            };
            match item {
                Ok(info) => {
                    if let Some(d) = info.error_detail {
                        return Err(failed(d.message.unwrap_or_default()));
                    }
                }
                Err(e) => return Err(failed(describe_engine_error(&e))),
            }
        }
        let pushed = self.docker().inspect_image(image_id).await?;
        let digest = pushed
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find_map(|d| {
                d.strip_prefix(&format!("{remote_repo}@"))
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                Error::Engine(format!(
                    "the registry {registry} took {remote_repo}:{tag} but the engine recorded \
                     no digest for it"
                ))
            })?;
        Ok(format!("{remote_repo}:{tag}@{digest}"))
    }

    /// The service's health check: the image's own, else `curl` or `wget` found in the image
    /// asking the readiness path, else none.
    pub(super) async fn health_check(
        &self,
        inspected: &bollard::models::ImageInspect,
        image: &str,
        deploy: &HashMap<String, String>,
        probe: &WebProbe,
    ) -> Result<(Option<HealthConfig>, &'static str)> {
        if own_health(inspected) {
            return Ok((None, "image"));
        }
        let url = format!("http://127.0.0.1:{}{}", probe.port, probe.path);
        // the deploy's own labels name the probe's owner
        let owner: HashMap<String, String> = [labels::ISSUE, labels::REPO, labels::DEPLOY_ID]
            .into_iter()
            .filter_map(|k| deploy.get(k).map(|v| (k.to_string(), v.clone())))
            .collect();
        let Some(tool) = self.find_tool(image, &owner).await? else {
            return Ok((None, "none"));
        };
        let mut test = vec!["CMD".to_string()];
        if tool.ends_with("curl") {
            test.push(tool);
            test.extend(["-sS", "-o", "/dev/null", "--max-time", "2"].map(String::from));
            if probe.path != "/" {
                test.push("-f".into());
            }
        } else {
            test.push(tool.clone());
            if tool.ends_with("busybox") {
                test.push("wget".into());
            }
            test.extend(["-q", "-O", "/dev/null"].map(String::from));
        }
        test.push(url);
        // checked often while the task starts (that gates the switch), rarely afterwards; an
        // engine older than API 1.44 has one interval for both: the start's
        let v = self.docker().client_version();
        let start_interval = (v.major_version, v.minor_version) >= (1, 44);
        let (interval, start) = if start_interval {
            (
                Duration::from_secs(10),
                Some(nanos(Duration::from_millis(500))),
            )
        } else {
            (Duration::from_secs(1), None)
        };
        Ok((
            Some(HealthConfig {
                test: Some(test),
                interval: Some(nanos(interval)),
                timeout: Some(nanos(Duration::from_secs(3))),
                retries: Some(3),
                start_period: Some(nanos(probe.timeout)),
                start_interval: start,
            }),
            "benchctl",
        ))
    }

    /// The first HTTP client found in the image, looked up in a never-started container: a
    /// step of the deploy `owner` names (its issue, repository and deploy id), labelled as
    /// such from its creation so that an interrupted deploy leaves nothing unfound.
    pub(super) async fn find_tool(
        &self,
        image: &str,
        owner: &HashMap<String, String>,
    ) -> Result<Option<String>> {
        const TOOLS: [&str; 7] = [
            "/usr/bin/curl",
            "/usr/local/bin/curl",
            "/bin/curl",
            "/usr/bin/wget",
            "/bin/wget",
            "/usr/local/bin/wget",
            "/bin/busybox",
        ];
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(vec!["benchctl-probe".to_string()]),
            network_disabled: Some(true),
            labels: Some(step_labels(owner)),
            ..Default::default()
        };
        let name = format!("benchctl-probe-{:08x}", rand::random::<u32>());
        let docker = self.docker().clone();
        run_step(async move {
            let opts = CreateContainerOptionsBuilder::default().name(&name).build();
            let created = docker.create_container(Some(opts), body).await?;
            let mut found = None;
            for tool in TOOLS {
                let opts = ContainerArchiveInfoOptionsBuilder::default()
                    .path(tool)
                    .build();
                if docker
                    .get_container_archive_info(&created.id, Some(opts))
                    .await
                    .is_ok()
                {
                    found = Some(tool.to_string());
                    break;
                }
            }
            // with its anonymous volumes (an image's VOLUME makes them at creation)
            let _ = remove_container(&docker, &created.id).await;
            Ok(found)
        })
        .await
    }

    pub(super) async fn service_spec(
        &self,
        spec: &ContainerSpec,
        name: &str,
    ) -> Result<ServiceSpec> {
        let local = self.docker().inspect_image(&spec.image).await?;
        let image_id = local.id.clone().unwrap_or_default();
        let reference = match &self.opts.registry {
            Some(r) => self.push(r, &spec.image, &image_id).await?,
            None => spec.image.clone(),
        };
        let probe = WebProbe {
            port: spec.container_port,
            path: spec.health_path.clone(),
            timeout: spec.ready_timeout,
        };
        let (health, health_from) = self
            .health_check(&local, &spec.image, &spec.labels, &probe)
            .await?;
        let mut service_labels = spec.labels.clone();
        service_labels.insert(IMAGE_ID.to_string(), image_id);
        service_labels.insert(HEALTH.to_string(), health_from.to_string());
        let mut task_labels = HashMap::new();
        if let Some(d) = spec.labels.get(labels::DEPLOY_ID) {
            task_labels.insert(labels::DEPLOY_ID.to_string(), d.clone());
        }
        let published = match self.opts.publish_mode {
            PublishMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
            PublishMode::Host => EndpointPortConfigPublishModeEnum::HOST,
        };
        let endpoint = spec.network.is_none().then(|| EndpointSpec {
            mode: None,
            ports: Some(vec![EndpointPortConfig {
                target_port: Some(spec.container_port.into()),
                publish_mode: Some(published),
                ..Default::default()
            }]),
        });
        let gated = health.is_some() || health_from == "image";
        let frame = Frame {
            name: name.to_string(),
            labels: service_labels,
            container: TaskSpecContainerSpec {
                image: Some(reference),
                labels: Some(task_labels),
                env: (!spec.env.is_empty()).then(|| spec.env.clone()),
                health_check: health,
                ..Default::default()
            },
            networks: spec
                .network
                .iter()
                .map(|n| NetworkAttachmentConfig {
                    target: Some(n.clone()),
                    aliases: None,
                    driver_opts: None,
                })
                .collect(),
            placement: None,
            endpoint,
            limits: &spec.limits,
            cap_add: &spec.cap_add,
            cap_drop: &[],
            reserve_cpu: true,
            restart: TaskSpecRestartPolicyConditionEnum::ANY,
            gated,
        };
        Ok(frame.spec())
    }

    /// What a service looks like as a bench: the newest task of its current version.
    pub(super) async fn describe(
        &self,
        s: Service,
        nodes: &mut NodeAddrs,
    ) -> Result<ContainerInfo> {
        let id = s.id.clone().unwrap_or_default();
        let spec = s.spec.clone().unwrap_or_default();
        let service_labels = spec.labels.clone().unwrap_or_default();
        let deploy_id = service_labels.get(labels::DEPLOY_ID).cloned();
        let mut tasks: Vec<Task> = self
            .tasks(&id)
            .await?
            .into_iter()
            .filter(|t| task_deploy_id(t) == deploy_id.as_deref())
            .collect();
        tasks.sort_by_key(|t| std::cmp::Reverse(t.created_at));
        let failed: Vec<&Task> = tasks
            .iter()
            .filter(|t| matches!(task_state(t), Some(TaskState::FAILED | TaskState::REJECTED)))
            .collect();
        let live = tasks
            .iter()
            .find(|t| t.desired_state == Some(TaskState::RUNNING));
        let update = s.update_status.clone().unwrap_or_default();
        let update_state = update.state;
        let rolled_back = matches!(
            update_state,
            Some(
                ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
            )
        );
        let has_health = service_labels.get(HEALTH).is_some_and(|h| h != "none");
        // as the service was published (the option of this run may differ)
        let published = spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.as_ref())
            .and_then(|p| p.first())
            .map(|p| p.publish_mode);
        let host_mode = published == Some(Some(EndpointPortConfigPublishModeEnum::HOST));
        let mesh = published.is_some() && !host_mode;
        let (mut state, mut running, mut health) = ("pending".to_string(), true, None);
        let mut exit_code = None;
        let mut host_port = None;
        let mut host = None;
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas);
        match live {
            // asleep (`benchctl sleep`): scaled to 0, nothing runs
            _ if replicas == Some(0) => {
                (state, running) = ("exited (0 replicas)".to_string(), false);
            }
            Some(t) if task_state(t) == Some(TaskState::RUNNING) => {
                state = "running".into();
                // with a health check, swarm calls a task running only once it is healthy
                health = has_health.then(|| "healthy".to_string());
                if update_state == Some(ServiceUpdateStatusStateEnum::UPDATING) {
                    // the previous task still runs until the swarm finishes the update
                    state = "running (update in progress)".into();
                    health = Some("starting".into());
                }
                if host_mode {
                    host_port = t
                        .status
                        .as_ref()
                        .and_then(|st| st.port_status.as_ref())
                        .and_then(|p| p.ports.as_ref())
                        .and_then(|p| p.iter().find_map(|p| p.published_port))
                        .and_then(|p| u16::try_from(p).ok());
                    if let Some(node) = &t.node_id {
                        host = nodes.addr(self.docker(), node).await;
                    }
                }
            }
            Some(t) => {
                let st = t.status.clone().unwrap_or_default();
                let name = task_state(t).map(|s| s.to_string()).unwrap_or_default();
                state = match st.err.filter(|e| !e.is_empty()) {
                    Some(err) => format!("task {name}: {err}"),
                    None if has_health && task_state(t) == Some(TaskState::STARTING) => {
                        "task starting: its health check has not passed yet".to_string()
                    }
                    None => format!("task {name}"),
                };
                health = Some("starting".into());
            }
            None if !failed.is_empty() => {
                running = false;
                let st = failed[0].status.clone().unwrap_or_default();
                exit_code = st.container_status.and_then(|c| c.exit_code);
                state = format!("failed: {}", st.err.unwrap_or_default());
            }
            None => health = Some("starting".into()),
        }
        if rolled_back {
            let message = update.message.unwrap_or_default();
            state = format!("{state} (rolled back by the swarm: {message})");
        }
        if mesh {
            host_port = s
                .endpoint
                .as_ref()
                .and_then(|e| e.ports.as_ref())
                .and_then(|p| p.iter().find_map(|p| p.published_port))
                .and_then(|p| u16::try_from(p).ok())
                .filter(|_| running && health.as_deref() != Some("starting"));
        }
        let reach_note = mesh.then(|| {
            "the port is published through the swarm's routing mesh, which needs IPVS \
             (the ip_vs kernel module) on every node and does not forward on engines without \
             it; deploy with --publish-mode host (BENCHCTL_PUBLISH_MODE=host) to publish on \
             the node the bench runs on"
                .to_string()
        });
        let image = super::spec_image(&spec);
        Ok(ContainerInfo {
            id,
            name: spec.name.unwrap_or_default(),
            image,
            image_id: service_labels.get(IMAGE_ID).cloned().unwrap_or_default(),
            labels: service_labels,
            state,
            running,
            exit_code,
            restarts: failed.len() as i64,
            health,
            host_port,
            ip: None,
            created: None,
            host,
            reach_note,
        })
    }

    /// Waits until a rollback the swarm started has finished.
    pub(super) async fn await_rollback(&self, id: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(s) = self.service(id).await? else {
                return Ok(());
            };
            let state = s.update_status.and_then(|u| u.state);
            match state {
                Some(ServiceUpdateStatusStateEnum::ROLLBACK_STARTED) => {}
                _ => return Ok(()),
            }
            if Instant::now() >= deadline {
                return Err(Error::Engine(format!(
                    "the swarm is still rolling service {id} back after {} s; `docker service \
                     ps {id}` tells why",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
