//! The container engine, behind one trait ([`Engine`]) so the orchestration does not know
//! which engine runs. [`DockerEngine`] implements it with bollard.

use crate::image::BuildSpec;
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateContainerOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    RenameContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::pin::Pin;

/// Labels benchctl puts on what it creates; list, teardown and cleanup find benches by them.
pub mod labels {
    pub const MANAGED: &str = "benchctl.managed";
    pub const ISSUE: &str = "benchctl.issue";
    pub const BRANCH: &str = "benchctl.branch";
    pub const COMMIT: &str = "benchctl.commit";
    pub const REPO: &str = "benchctl.repo";
    pub const URL: &str = "benchctl.url";
    pub const PORT: &str = "benchctl.port";
    pub const DEPLOYED_AT: &str = "benchctl.deployed-at";
    pub const PUBLIC_HOST: &str = "benchctl.public-host";
    /// `lock` on lock containers (never started); absent on benches.
    pub const ROLE: &str = "benchctl.role";
    /// Random id of the deploy that created a container (to clean up after an interruption).
    pub const DEPLOY_ID: &str = "benchctl.deploy-id";
    /// Committer time (unix seconds) of the deployed commit: an older one never replaces it.
    pub const COMMIT_TIME: &str = "benchctl.commit-time";
    /// Hash of the settings the bench was built and run with (no-op redeploys compare it).
    pub const SETTINGS: &str = "benchctl.settings";
    /// The URL template the bench's address is rendered from (`list` renders it again).
    pub const URL_TEMPLATE: &str = "benchctl.url-template";
    /// The Tracker field the bench's address was written to (teardown clears that one).
    pub const FIELD: &str = "benchctl.field";

    /// The label filter of what benchctl made for `issue`.
    pub fn issue_filter(issue: &str) -> Vec<String> {
        vec![format!("{MANAGED}=true"), format!("{ISSUE}={issue}")]
    }
}

/// The build context as a stream of tar bytes.
pub type ContextStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// What a bench container is made of.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub container_port: u16,
    /// Host address the port is published on (`0.0.0.0` for all interfaces).
    pub bind: String,
    pub limits: Limits,
    /// `NAME=value` entries of the bench's environment.
    pub env: Vec<String>,
    /// Join this network instead of publishing the port (a reverse proxy routes to it).
    pub network: Option<String>,
    /// The bench this one replaces. Plain containers start beside it (the orchestration
    /// removes it once the new one answers); a swarm service is updated in place.
    pub replaces: Option<String>,
    /// What the readiness probe asks (a swarm service's health check asks it too).
    pub health_path: String,
    /// How long the bench may take to answer.
    pub ready_timeout: std::time::Duration,
}

/// Resource limits of a bench.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 * 1024 * 1024,
            nano_cpus: 1_000_000_000,
            pids: 256,
        }
    }
}

/// What the engine says about one container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    /// The image's id (`sha256:...`).
    pub image_id: String,
    pub labels: HashMap<String, String>,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    pub running: bool,
    pub exit_code: Option<i64>,
    /// How often the engine restarted it (restart policy).
    pub restarts: i64,
    /// `healthy`, `unhealthy`, `starting`, or `None` without a HEALTHCHECK.
    pub health: Option<String>,
    pub host_port: Option<u16>,
    /// The container's address on its network (from `inspect`).
    pub ip: Option<String>,
    /// Unix seconds.
    pub created: Option<i64>,
    /// Where the published port is, when the engine knows better than the public host (the
    /// node a swarm task runs on in host publish mode).
    pub host: Option<String>,
    /// What to suspect when the published port does not answer (the swarm's routing mesh).
    pub reach_note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
    pub exposed_ports: Vec<u16>,
    pub labels: HashMap<String, String>,
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// Builds from a streamed context; returns the image id. Build output goes to `reporter`.
    async fn build(
        &self,
        spec: &BuildSpec,
        context: ContextStream,
        reporter: &SharedReporter,
    ) -> Result<String>;
    async fn image(&self, name: &str) -> Result<Option<ImageInfo>>;
    /// Applies Dockerfile configuration instructions (`changes`, one per line) to `image` in one
    /// commit, tagged `tag`; returns the new image's id.
    async fn commit(&self, image: &str, changes: &str, tag: &str) -> Result<String>;
    /// Images carrying all `labels` (`key=value`).
    async fn images(&self, labels: &[String]) -> Result<Vec<ImageInfo>>;
    async fn remove_image(&self, id: &str) -> Result<()>;
    /// Creates and starts a container; returns its id.
    async fn run(&self, spec: &ContainerSpec) -> Result<String>;
    /// Creates (never starts) a marker container named `name`: the engine's atomic name
    /// reservation makes this a lock. `None` when the name is taken.
    async fn create_marker(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<Option<String>>;
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>>;
    /// Containers (running or not) carrying all `labels` (`key=value`, exact match).
    async fn containers(&self, labels: &[String]) -> Result<Vec<ContainerInfo>>;
    async fn rename(&self, id: &str, name: &str) -> Result<()>;
    /// Removes a container (stopping it first); a container already gone is not an error.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Checks, before any fetch or build, that this engine can start a new bench at all (a
    /// swarm of several nodes needs a registry).
    async fn check_can_run(&self) -> Result<()> {
        Ok(())
    }
    /// What about this engine shapes a bench besides its settings (a change redeploys even
    /// an unchanged commit); empty for plain containers.
    fn shape(&self) -> String {
        String::new()
    }
    /// Abandons a bench version that failed or was interrupted before it became the bench:
    /// a container is removed; a service updated in place goes back to its previous version.
    async fn discard(&self, id: &str) -> Result<()> {
        self.remove(id).await
    }
    /// The last `n` lines the container printed.
    async fn logs_tail(&self, id: &str, n: usize) -> Result<Vec<String>>;
    /// The container's output (stdout and stderr), the last `tail` lines first, then, with
    /// `follow`, everything it prints until it stops.
    fn logs(&self, id: &str, follow: bool, tail: Option<usize>) -> LogStream;
}

/// Raw output of a container.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Where the engine is, as the docker CLI reads it from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`
/// and `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    /// `tcp://host:port` without TLS.
    Tcp {
        host: String,
        port: u16,
    },
    /// `tcp://host:port` (or `https://`) with TLS: client certificate and CA from `cert_path`.
    Tls {
        host: String,
        port: u16,
        cert_path: std::path::PathBuf,
    },
    /// `ssh://[user@]host[:port]`: the engine behind the remote `docker system dial-stdio`.
    Ssh {
        url: String,
        host: String,
    },
}

impl Endpoint {
    /// Reads the endpoint as the docker CLI does: `DOCKER_HOST` (default the local socket);
    /// TLS when `DOCKER_TLS_VERIFY` is non-empty, certificates in `DOCKER_CERT_PATH` (default
    /// `~/.docker`).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint> {
        let host = get("DOCKER_HOST")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let tls = get("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let cert_path = get("DOCKER_CERT_PATH")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(get("HOME").unwrap_or_else(|| "/".into())).join(".docker")
            });
        let bad = |why: &str| {
            Err(Error::usage(format!(
                "DOCKER_HOST `{host}` {why}; use unix:///path, tcp://host:port or ssh://user@host"
            )))
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return bad("names no socket");
            }
            return Ok(Endpoint::Unix(host.clone()));
        }
        if let Some(rest) = host.strip_prefix("ssh://") {
            let authority = rest.split('/').next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let name = match hostport.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                _ => hostport,
            };
            if name.is_empty() {
                return bad("names no host");
            }
            return Ok(Endpoint::Ssh {
                url: host.clone(),
                host: name.trim_matches(['[', ']']).to_string(),
            });
        }
        let (rest, https) = match (
            host.strip_prefix("tcp://"),
            host.strip_prefix("https://"),
            host.strip_prefix("http://"),
        ) {
            (Some(r), _, _) => (r, false),
            (_, Some(r), _) => (r, true),
            (_, _, Some(r)) => (r, false),
            _ => return bad("has an unknown scheme"),
        };
        let authority = rest.trim_end_matches('/');
        let (name, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h, p),
                Err(_) => return bad("has a port that is not a number"),
            },
            _ => (authority, if tls || https { 2376 } else { 2375 }),
        };
        let name = name.trim_matches(['[', ']']).to_string();
        if name.is_empty() {
            return bad("names no host");
        }
        Ok(if tls || https {
            Endpoint::Tls {
                host: name,
                port,
                cert_path,
            }
        } else {
            Endpoint::Tcp { host: name, port }
        })
    }

    /// The remote engine's host name (benches publish their ports there), `None` for a local
    /// socket.
    pub fn remote_host(&self) -> Option<&str> {
        match self {
            Endpoint::Unix(_) => None,
            Endpoint::Tcp { host, .. }
            | Endpoint::Tls { host, .. }
            | Endpoint::Ssh { host, .. } => Some(host),
        }
    }

    fn connect(&self) -> std::result::Result<Docker, bollard::errors::Error> {
        use bollard::API_DEFAULT_VERSION as V;
        const TIMEOUT: u64 = 120;
        let bracket = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        };
        match self {
            Endpoint::Unix(url) => Docker::connect_with_unix(url, TIMEOUT, V),
            Endpoint::Tcp { host, port } => {
                Docker::connect_with_http(&format!("tcp://{}:{port}", bracket(host)), TIMEOUT, V)
            }
            Endpoint::Tls {
                host,
                port,
                cert_path,
            } => Docker::connect_with_ssl(
                &format!("tcp://{}:{port}", bracket(host)),
                &cert_path.join("key.pem"),
                &cert_path.join("cert.pem"),
                &cert_path.join("ca.pem"),
                TIMEOUT,
                V,
            ),
            Endpoint::Ssh { url, .. } => Docker::connect_with_ssh(url, TIMEOUT, V, None),
        }
    }
}

/// Where benches run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// Containers on the engine.
    #[default]
    Docker,
    /// One-replica services on the swarm the engine manages.
    Swarm(crate::swarm::SwarmOptions),
}

impl Backend {
    /// Connects to the engine of this backend.
    pub async fn connect(&self) -> Result<Box<dyn Engine>> {
        Ok(match self {
            Backend::Docker => Box::new(DockerEngine::connect().await?),
            Backend::Swarm(o) => Box::new(crate::swarm::SwarmEngine::connect(o.clone()).await?),
        })
    }
}

/// Where the engine is expected, for error messages.
pub fn engine_location() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => format!("DOCKER_HOST={h}"),
        _ => "unix:///var/run/docker.sock (DOCKER_HOST is not set)".to_string(),
    }
}

/// An error with its causes (refused, TLS certificate, ...), which hyper keeps in the source
/// chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = inner.source();
    }
    out
}

/// Turns a bollard error into a message for the user.
pub fn describe_engine_error(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { message, .. } => message.clone(),
        B::DockerStreamError { error } => error.clone(),
        B::HyperResponseError { .. }
        | B::HyperLegacyError { .. }
        | B::IOError { .. }
        | B::SocketNotFoundError(_)
        | B::RequestTimeoutError => {
            format!(
                "cannot reach the Docker engine at {}: {}; start the engine, or check \
                 DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
                engine_location(),
                error_chain(e)
            )
        }
        other => other.to_string(),
    }
}

pub(crate) fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn parse_port(p: &str) -> Option<u16> {
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

/// The empty image lock containers are made from (built locally, nothing to pull).
pub const LOCK_IMAGE: &str = "benchctl/lock:1";

pub struct DockerEngine {
    pub(crate) docker: Docker,
}

impl DockerEngine {
    async fn build_lock_image(&self) -> Result<()> {
        let dockerfile = b"FROM scratch\n";
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "Dockerfile", &dockerfile[..])
            .map_err(|e| Error::Engine(e.to_string()))?;
        let body = tar.into_inner().map_err(|e| Error::Engine(e.to_string()))?;
        let mut lbl = HashMap::new();
        lbl.insert(labels::MANAGED.to_string(), "true".to_string());
        lbl.insert(labels::ROLE.to_string(), "lock".to_string());
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(LOCK_IMAGE)
            .rm(true)
            .forcerm(true)
            .labels(&lbl)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(body.into())));
        while let Some(item) = stream.next().await {
            let info = item?;
            if let Some(detail) = info.error_detail {
                return Err(Error::Engine(format!(
                    "cannot build the lock image: {}",
                    detail.message.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

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
        Ok(DockerEngine { docker })
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
        let health = c
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none");
        ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: c.image.unwrap_or_default(),
            image_id: c.image_id.unwrap_or_default(),
            labels: c.labels.unwrap_or_default(),
            running: state == "running",
            state,
            exit_code: None,
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

#[async_trait]
impl Engine for DockerEngine {
    async fn build(
        &self,
        spec: &BuildSpec,
        context: ContextStream,
        reporter: &SharedReporter,
    ) -> Result<String> {
        let mut options = BuildImageOptionsBuilder::default();
        if !spec.tag.is_empty() {
            options = options.t(&spec.tag);
        }
        if let Some(t) = &spec.target {
            options = options.target(t);
        }
        let build_args: HashMap<String, String> = spec
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let options = options
            .dockerfile(&spec.dockerfile)
            .buildargs(&build_args)
            .rm(true)
            .forcerm(true)
            .labels(&spec.labels)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(context)));
        let mut image_id = None;
        let mut built_line = None;
        let mut partial = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(Error::from)?;
            if let Some(detail) = info.error_detail {
                let msg = detail
                    .message
                    .unwrap_or_else(|| "unknown build error".into());
                return Err(Error::Engine(msg.trim().to_string()));
            }
            if let Some(text) = info.stream {
                partial.push_str(&text);
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    let line = line.trim_end();
                    if let Some(id) = line.strip_prefix("Successfully built ") {
                        built_line = Some(id.trim().to_string());
                    }
                    if !line.is_empty() {
                        reporter.report(Event::BuildOutput(line.to_string()));
                    }
                }
            }
            if let Some(aux) = info.aux {
                if let Some(id) = aux.id {
                    image_id = Some(id);
                }
            }
        }
        if !partial.trim().is_empty() {
            reporter.report(Event::BuildOutput(partial.trim_end().to_string()));
        }
        match image_id.or(built_line) {
            Some(id) => Ok(id),
            // Older engines report the id only through the tag: look it up.
            None => self
                .image(&spec.tag)
                .await?
                .map(|i| i.id)
                .ok_or_else(|| Error::Engine("the engine reported no image".into())),
        }
    }

    async fn image(&self, name: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(name).await {
            Ok(img) => {
                let cfg = img.config.unwrap_or_default();
                let mut ports: Vec<u16> = cfg
                    .exposed_ports
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| parse_port(p))
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                Ok(Some(ImageInfo {
                    id: img.id.unwrap_or_default(),
                    exposed_ports: ports,
                    labels: cfg.labels.unwrap_or_default(),
                }))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn commit(&self, image: &str, changes: &str, tag: &str) -> Result<String> {
        let info = self.docker.inspect_image(image).await?;
        let cfg = info.config.unwrap_or_default();
        let no_command = cfg.cmd.as_ref().is_none_or(Vec::is_empty)
            && cfg.entrypoint.as_ref().is_none_or(Vec::is_empty);
        let mut changes = changes.to_string();
        let sets_cmd = changes
            .lines()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("CMD"));
        if no_command && !sets_cmd {
            changes.push_str("\nCMD []");
        }
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // an image without a command cannot make a container: give this one a stand-in
            cmd: no_command.then(|| vec!["/benchctl-commit".to_string()]),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await?;
        let result = async {
            let container = self
                .docker
                .inspect_container(&created.id, None::<InspectContainerOptions>)
                .await?;
            // the container's own configuration, as `docker commit` uses it: `$VAR`s in the
            // changes then expand against the image's environment
            let mut config = container.config.unwrap_or_default();
            config.hostname = None;
            let (repo, tag_part) = match tag.rfind(':') {
                Some(i) if !tag[i..].contains('/') => (&tag[..i], &tag[i + 1..]),
                _ => (tag, "latest"),
            };
            let opts = bollard::query_parameters::CommitContainerOptionsBuilder::default()
                .container(&created.id)
                .repo(repo)
                .tag(tag_part)
                .changes(&changes)
                .pause(false)
                .build();
            let id = self.docker.commit_container(opts, config).await?;
            Ok::<String, Error>(id.id)
        }
        .await;
        let _ = self.remove(&created.id).await;
        result
    }

    async fn images(&self, labels: &[String]) -> Result<Vec<ImageInfo>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels.to_vec());
        let opts = ListImagesOptionsBuilder::default()
            .all(false)
            .filters(&filters)
            .build();
        let list = self.docker.list_images(Some(opts)).await?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                exposed_ports: Vec::new(),
                labels: i.labels,
            })
            .collect())
    }

    async fn remove_image(&self, id: &str) -> Result<()> {
        let opts = RemoveImageOptionsBuilder::default()
            .force(true)
            .noprune(false)
            .build();
        match self.docker.remove_image(id, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn run(&self, spec: &ContainerSpec) -> Result<String> {
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
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(HostConfig {
                port_bindings: spec.network.is_none().then_some(bindings),
                network_mode: spec.network.clone(),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                memory: Some(spec.limits.memory_bytes),
                nano_cpus: Some(spec.limits.nano_cpus),
                pids_limit: Some(spec.limits.pids),
                init: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self.docker.create_container(Some(opts), body).await?;
        if let Err(e) = self
            .docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            let _ = self.remove(&created.id).await;
            return Err(e.into());
        }
        Ok(created.id)
    }

    async fn create_marker(
        &self,
        name: &str,
        labels: &HashMap<String, String>,
    ) -> Result<Option<String>> {
        for attempt in 0..2 {
            if attempt > 0 || self.image(LOCK_IMAGE).await?.is_none() {
                self.build_lock_image().await?;
            }
            let body = ContainerCreateBody {
                image: Some(LOCK_IMAGE.to_string()),
                cmd: Some(vec!["benchctl-lock".to_string()]),
                labels: Some(labels.clone()),
                network_disabled: Some(true),
                ..Default::default()
            };
            let opts = CreateContainerOptionsBuilder::default().name(name).build();
            match self.docker.create_container(Some(opts), body).await {
                Ok(c) => return Ok(Some(c.id)),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => return Ok(None),
                // the lock image was removed (gc) between the check and the create
                Err(e) if not_found(&e) && attempt == 0 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Engine(format!("cannot create {name}")))
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
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
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

    async fn containers(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), labels.to_vec());
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self.docker.list_containers(Some(opts)).await?;
        Ok(list
            .into_iter()
            .map(Self::summary_to_info)
            // a swarm task inherits its image's labels, but the swarm backend owns it
            .filter(|c| !c.labels.contains_key("com.docker.swarm.task.id"))
            .collect())
    }

    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let opts = RenameContainerOptionsBuilder::default().name(name).build();
        self.docker.rename_container(id, opts).await?;
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            // "removal already in progress"
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(e.into()),
        }
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

#[cfg(test)]
mod tests {

    fn endpoint(vars: &[(&str, &str)]) -> Result<Endpoint> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Endpoint::from_env(&|k| map.get(k).cloned())
    }

    #[test]
    fn docker_host_is_read_as_the_docker_cli_reads_it() {
        assert_eq!(
            endpoint(&[]).unwrap(),
            Endpoint::Unix("unix:///var/run/docker.sock".into())
        );
        assert_eq!(endpoint(&[]).unwrap().remote_host(), None);
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")]).unwrap(),
            Endpoint::Unix("unix:///run/user/1000/docker.sock".into())
        );
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "tcp://build.example.com:2375")]).unwrap(),
            Endpoint::Tcp {
                host: "build.example.com".into(),
                port: 2375
            }
        );
        // DOCKER_TLS_VERIFY set and non-empty: TLS, certificates from DOCKER_CERT_PATH
        assert_eq!(
            endpoint(&[
                ("DOCKER_HOST", "tcp://10.0.0.5:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/etc/docker-certs"),
            ])
            .unwrap(),
            Endpoint::Tls {
                host: "10.0.0.5".into(),
                port: 2376,
                cert_path: "/etc/docker-certs".into()
            }
        );
        // an empty DOCKER_TLS_VERIFY is unset (as for the CLI); default cert path ~/.docker
        assert!(matches!(
            endpoint(&[("DOCKER_HOST", "tcp://h:2375"), ("DOCKER_TLS_VERIFY", "")]).unwrap(),
            Endpoint::Tcp { .. }
        ));
        assert_eq!(
            endpoint(&[
                ("DOCKER_HOST", "tcp://h"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("HOME", "/home/u")
            ])
            .unwrap(),
            Endpoint::Tls {
                host: "h".into(),
                port: 2376,
                cert_path: "/home/u/.docker".into()
            }
        );
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "tcp://[2001:db8::1]:2375")]).unwrap(),
            Endpoint::Tcp {
                host: "2001:db8::1".into(),
                port: 2375
            }
        );
        let ssh = endpoint(&[("DOCKER_HOST", "ssh://deploy@bench-1.example.com:2222")]).unwrap();
        assert_eq!(ssh.remote_host(), Some("bench-1.example.com"));
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "ssh://bench-2")])
                .unwrap()
                .remote_host(),
            Some("bench-2")
        );
        for bad in ["ftp://x", "tcp://h:port", "tcp://", "ssh://", "unix://"] {
            let e = endpoint(&[("DOCKER_HOST", bad)]).unwrap_err().to_string();
            assert!(e.contains("DOCKER_HOST"), "{bad}: {e}");
        }
    }

    use super::*;

    #[test]
    fn ports_parse() {
        assert_eq!(parse_port("8080/tcp"), Some(8080));
        assert_eq!(parse_port("53/udp"), None);
        assert_eq!(parse_port("80"), Some(80));
    }
}
