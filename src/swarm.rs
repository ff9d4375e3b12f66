//! The Swarm backend: a bench is a one-replica Swarm service, behind the same [`Engine`] trait
//! as plain containers. Builds and images stay on the manager node benchctl talks to; the lock
//! and result markers are swarm configs (names unique across the swarm, so benchctl processes
//! talking to different managers share each issue's lock).
//!
//! A redeploy updates the service in place (`start-first`, automatic rollback): the old task
//! keeps serving until the new one passes its health check, and a new version that fails goes
//! back to the previous one. The service's health check is the image's HEALTHCHECK, else one
//! benchctl writes with the image's own curl or wget (the readiness path), so that the swarm
//! itself gates the switch.

use crate::image::BuildSpec;
use crate::output::SharedReporter;
use crate::runtime::{
    labels, last_lines, log_options, not_found, ContainerInfo, ContainerSpec, ContextStream,
    DockerEngine, Engine, ImageInfo, LogStream,
};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec,
    HealthConfig, Limit, NetworkAttachmentConfig, ResourceObject, Service, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, InspectServiceOptions,
    ListContainersOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    PushImageOptionsBuilder, RemoveContainerOptionsBuilder, TagImageOptionsBuilder,
    UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

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
    pub credentials: Option<RegistryAuth>,
}

/// A registry user and password (never shown).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: crate::secret::Secret,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryAuth({}, <redacted>)", self.username)
    }
}

/// The credential helper the docker CLI uses for `registry`: its `credHelpers` entry, else
/// `credsStore` (`docker-credential-<name>`).
pub fn credential_helper(config_json: &str, registry: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let named = v
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| v.get("credsStore"))?;
    named.as_str().filter(|n| !n.is_empty()).map(str::to_string)
}

/// Asks `docker-credential-<helper> get` (the registry on its stdin, as the docker CLI does;
/// no shell) for the registry's credentials. `Ok(None)` when it has none.
pub fn helper_auth(helper: &str, registry: &str) -> Result<Option<RegistryAuth>> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let failed = |why: String| {
        Error::usage(format!(
            "the docker credential helper `{program}` (named in the docker config) could not give \
             the credentials of {registry}: {why}; fix it, or set BENCHCTL_REGISTRY_USER and \
             BENCHCTL_REGISTRY_PASSWORD"
        ))
    };
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // the helpers' own wording for "nothing stored"
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!("{} {}", stdout.trim(), said.trim())));
    }
    let v: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| failed(format!("not JSON ({e})")))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(RegistryAuth {
        username,
        password: crate::secret::Secret::new(secret),
    }))
}

/// The credentials the docker CLI stored for `registry` with `docker login` (the `auths`
/// entry of `config.json`; see [`credential_helper`] for the helpers).
pub fn docker_config_auth(config_json: &str, registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, e)| {
        let host = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (host == registry).then_some(e)
    })?;
    let raw = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(RegistryAuth {
        username: user.to_string(),
        password: crate::secret::Secret::new(pass.to_string()),
    })
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

fn marker_info(c: bollard::models::Config) -> ContainerInfo {
    let spec = c.spec.unwrap_or_default();
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        image: String::new(),
        image_id: String::new(),
        labels: spec.labels.unwrap_or_default(),
        state: "created".into(),
        running: false,
        exit_code: None,
        restarts: 0,
        health: None,
        host_port: None,
        ip: None,
        created: None,
        host: None,
        reach_note: None,
    }
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
                crate::runtime::engine_location(),
                if state.is_empty() { "inactive" } else { &state }
            )));
        }
        if swarm.control_available != Some(true) {
            return Err(Error::usage(format!(
                "--backend swarm needs a manager node, but the engine at {} is a worker of its \
                 swarm; point DOCKER_HOST at a manager (`docker node ls` there lists them)",
                crate::runtime::engine_location()
            )));
        }
        Ok(SwarmEngine { inner, opts })
    }

    fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    fn credentials(&self) -> Option<DockerCredentials> {
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

    /// A marker (lock or result) kept as a swarm config: names are unique across the whole
    /// swarm, so every manager sees the same lock.
    async fn marker(&self, id: &str) -> Result<Option<ContainerInfo>> {
        match self.docker().inspect_config(id).await {
            Ok(c) => Ok(Some(marker_info(c))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn tasks(&self, service_id: &str) -> Result<Vec<Task>> {
        let mut filters = HashMap::new();
        filters.insert("service".to_string(), vec![service_id.to_string()]);
        let opts = ListTasksOptionsBuilder::default().filters(&filters).build();
        Ok(self.docker().list_tasks(Some(opts)).await?)
    }

    /// Pushes the image to the registry; returns the reference every node can pull
    /// (`registry/repo:tag@sha256:...`).
    async fn push(&self, registry: &str, image: &str, image_id: &str) -> Result<String> {
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let remote_repo = format!("{registry}/{repo}");
        let opts = TagImageOptionsBuilder::default()
            .repo(&remote_repo)
            .tag(tag)
            .build();
        self.docker().tag_image(image_id, Some(opts)).await?;
        let opts = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self
            .docker()
            .push_image(&remote_repo, Some(opts), self.credentials());
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
                Err(e) => return Err(failed(crate::runtime::describe_engine_error(&e))),
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
    async fn health_check(
        &self,
        inspected: &bollard::models::ImageInspect,
        spec: &ContainerSpec,
    ) -> Result<(Option<HealthConfig>, &'static str)> {
        let own = inspected
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| !t.is_empty() && t[0] != "NONE");
        if own {
            return Ok((None, "image"));
        }
        let url = format!(
            "http://127.0.0.1:{}{}",
            spec.container_port, spec.health_path
        );
        let Some(tool) = self.find_tool(&spec.image).await? else {
            return Ok((None, "none"));
        };
        let mut test = vec!["CMD".to_string()];
        if tool.ends_with("curl") {
            test.push(tool);
            test.extend(["-sS", "-o", "/dev/null", "--max-time", "2"].map(String::from));
            if spec.health_path != "/" {
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
                start_period: Some(nanos(spec.ready_timeout)),
                start_interval: start,
            }),
            "benchctl",
        ))
    }

    /// The first HTTP client found in the image (looked up in a never-started container).
    async fn find_tool(&self, image: &str) -> Result<Option<String>> {
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
            ..Default::default()
        };
        let name = format!("benchctl-probe-{:08x}", rand::random::<u32>());
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = self.docker().create_container(Some(opts), body).await?;
        let mut found = None;
        for tool in TOOLS {
            let opts = ContainerArchiveInfoOptionsBuilder::default()
                .path(tool)
                .build();
            if self
                .docker()
                .get_container_archive_info(&created.id, Some(opts))
                .await
                .is_ok()
            {
                found = Some(tool.to_string());
                break;
            }
        }
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self
            .docker()
            .remove_container(&created.id, Some(opts))
            .await;
        Ok(found)
    }

    async fn service_spec(&self, spec: &ContainerSpec, name: &str) -> Result<ServiceSpec> {
        let local = self.docker().inspect_image(&spec.image).await?;
        let image_id = local.id.clone().unwrap_or_default();
        let reference = match &self.opts.registry {
            Some(r) => self.push(r, &spec.image, &image_id).await?,
            None => spec.image.clone(),
        };
        let (health, health_from) = self.health_check(&local, spec).await?;
        let mut service_labels = spec.labels.clone();
        service_labels.insert(IMAGE_ID.to_string(), image_id);
        service_labels.insert(HEALTH.to_string(), health_from.to_string());
        let mut task_labels = HashMap::new();
        if let Some(d) = spec.labels.get(labels::DEPLOY_ID) {
            task_labels.insert(labels::DEPLOY_ID.to_string(), d.clone());
        }
        let limits = &spec.limits;
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
        // how long a new task is watched for failure before the update counts as done: a
        // health check already gated it; without one, a crash soon after the start must show
        let monitor = nanos(if health.is_some() || health_from == "image" {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        });
        Ok(ServiceSpec {
            name: Some(name.to_string()),
            labels: Some(service_labels),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(reference),
                    labels: Some(task_labels),
                    env: (!spec.env.is_empty()).then(|| spec.env.clone()),
                    health_check: health,
                    init: Some(false),
                    stop_grace_period: Some(nanos(STOP_GRACE)),
                    ..Default::default()
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: Some(limits.nano_cpus),
                        memory_bytes: Some(limits.memory_bytes),
                        pids: Some(limits.pids),
                    }),
                    reservations: Some(ResourceObject {
                        nano_cpus: Some(limits.nano_cpus),
                        memory_bytes: Some(limits.memory_bytes),
                        generic_resources: None,
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                    delay: Some(nanos(Duration::from_secs(2))),
                    max_attempts: None,
                    window: None,
                }),
                networks: spec.network.as_ref().map(|n| {
                    vec![NetworkAttachmentConfig {
                        target: Some(n.clone()),
                        aliases: None,
                        driver_opts: None,
                    }]
                }),
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
            endpoint_spec: endpoint,
        })
    }

    /// What a service looks like as a bench: the newest task of its current version.
    async fn describe(&self, s: Service, nodes: &mut NodeAddrs) -> Result<ContainerInfo> {
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
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at));
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
        match live {
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
        let image = spec
            .task_template
            .and_then(|t| t.container_spec)
            .and_then(|c| c.image)
            .unwrap_or_default();
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
    async fn await_rollback(&self, id: &str, timeout: Duration) -> Result<()> {
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

#[async_trait]
impl Engine for SwarmEngine {
    async fn build(
        &self,
        spec: &BuildSpec,
        context: ContextStream,
        reporter: &SharedReporter,
    ) -> Result<String> {
        self.inner.build(spec, context, reporter).await
    }

    async fn image(&self, name: &str) -> Result<Option<ImageInfo>> {
        self.inner.image(name).await
    }

    async fn commit(&self, image: &str, changes: &str, tag: &str) -> Result<String> {
        self.inner.commit(image, changes, tag).await
    }

    async fn images(&self, labels: &[String]) -> Result<Vec<ImageInfo>> {
        self.inner.images(labels).await
    }

    async fn remove_image(&self, id: &str) -> Result<()> {
        match self.inner.remove_image(id).await {
            // the task a finished update replaced is still stopping (its grace period): its
            // image goes with the next deploy, teardown or gc rather than delay this one
            Err(Error::Engine(m)) if m.contains("running container") => Ok(()),
            other => other,
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<String> {
        // one bench per issue: a container bench (the docker backend's) stops a service
        if let Some(issue) = spec.labels.get(labels::ISSUE) {
            let containers = self.inner.containers(&labels::issue_filter(issue)).await?;
            if containers
                .iter()
                .any(|c| !c.labels.contains_key(labels::ROLE))
            {
                return Err(Error::usage(format!(
                    "{issue} already has a container bench on this engine (the docker \
                     backend); one issue gets one bench: tear it down first (`benchctl \
                     --backend docker teardown {issue}`) or deploy with --backend docker"
                )));
            }
        }
        let current = match &spec.replaces {
            Some(id) => self.service(id).await?,
            None => None,
        };
        match current {
            Some(cur) => {
                let id = cur.id.clone().unwrap_or_default();
                let name = cur.spec.and_then(|s| s.name).unwrap_or_default();
                let body = self.service_spec(spec, &name).await?;
                let version = cur.version.and_then(|v| v.index).unwrap_or(0);
                let opts = UpdateServiceOptionsBuilder::default()
                    .version(i32::try_from(version).unwrap_or(i32::MAX))
                    .build();
                self.docker()
                    .update_service(&id, body, opts, self.credentials())
                    .await?;
                Ok(id)
            }
            None => {
                let body = self.service_spec(spec, &spec.name).await?;
                let created = self
                    .docker()
                    .create_service(body, self.credentials())
                    .await?;
                Ok(created.id.unwrap_or_default())
            }
        }
    }

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

    async fn create_marker(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<Option<String>> {
        let spec = bollard::models::ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            // "benchctl": a config must hold something
            data: Some("YmVuY2hjdGw=".to_string()),
            templating: None,
        };
        match self.docker().create_config(spec).await {
            Ok(r) => Ok(Some(r.id)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        if let Some(s) = self.service(id).await? {
            return Ok(Some(self.describe(s, &mut NodeAddrs::default()).await?));
        }
        match self.marker(id).await? {
            Some(m) => Ok(Some(m)),
            None => self.inner.inspect(id).await,
        }
    }

    async fn containers(&self, filter: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), filter.to_vec());
        let opts = ListServicesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut out = Vec::new();
        let mut nodes = NodeAddrs::default();
        for s in self.docker().list_services(Some(opts)).await? {
            out.push(self.describe(s, &mut nodes).await?);
        }
        // the lock and result markers: swarm configs
        let opts = bollard::query_parameters::ListConfigsOptionsBuilder::default()
            .filters(&filters)
            .build();
        out.extend(
            self.docker()
                .list_configs(Some(opts))
                .await?
                .into_iter()
                .map(marker_info),
        );
        // and marker containers a container bench of the issue may have left on this node
        out.extend(
            self.inner
                .containers(filter)
                .await?
                .into_iter()
                .filter(|c| c.labels.contains_key(labels::ROLE)),
        );
        Ok(out)
    }

    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        match self.service(id).await? {
            Some(s) if s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name) => Ok(()),
            Some(_) => Err(Error::Engine(format!(
                "swarm service {id} cannot be renamed to {name}; remove it (`benchctl gc`)"
            ))),
            None => self.inner.rename(id, name).await,
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        if self.service(id).await?.is_none() {
            if self.marker(id).await?.is_some() {
                return match self.docker().delete_config(id).await {
                    Err(e) if !not_found(&e) => Err(e.into()),
                    _ => Ok(()),
                };
            }
            return self.inner.remove(id).await;
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

    async fn discard(&self, id: &str) -> Result<()> {
        let Some(s) = self.service(id).await? else {
            return self.inner.remove(id).await;
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
                match self
                    .docker()
                    .update_service(id, spec, opts, self.credentials())
                    .await
                {
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

    async fn logs_tail(&self, id: &str, n: usize) -> Result<Vec<String>> {
        if self.service(id).await?.is_none() {
            return self.inner.logs_tail(id, n).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_login_credentials_are_read_for_the_registry() {
        let config = r#"{"auths":{"https://reg.example.com:5000/":{"auth":"dXNlcjpwYXNzOndvcmQ="},
            "other.example.com":{"auth":"eDp5"}}}"#;
        let auth = docker_config_auth(config, "reg.example.com:5000").unwrap();
        assert_eq!(auth.username, "user");
        assert_eq!(auth.password.expose(), "pass:word");
        assert!(!format!("{auth:?}").contains("pass"));
        assert!(docker_config_auth(config, "nowhere.example.com").is_none());
        assert!(docker_config_auth("not json", "reg.example.com:5000").is_none());
    }

    #[test]
    fn a_bigger_swarm_needs_a_registry() {
        assert!(single_node_or_registry(1).is_ok());
        let e = single_node_or_registry(3).unwrap_err().to_string();
        assert!(e.contains("3 nodes") && e.contains("--registry"), "{e}");
    }

    #[test]
    fn the_credential_helper_is_the_registry_s_own_else_the_store() {
        let config = r#"{"credsStore":"desktop","credHelpers":{"reg.example.com":"ecr-login"}}"#;
        assert_eq!(
            credential_helper(config, "reg.example.com").as_deref(),
            Some("ecr-login")
        );
        assert_eq!(
            credential_helper(config, "other.example.com").as_deref(),
            Some("desktop")
        );
        assert_eq!(
            credential_helper(r#"{"auths":{}}"#, "reg.example.com"),
            None
        );
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
