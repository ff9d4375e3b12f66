//! Where benches run, behind three small roles that the use cases hold: [`Images`] (build,
//! inspect, commit, remove), [`Benches`] (start a candidate version, promote it, discard it,
//! read and remove benches), [`Markers`] (the lock and last-deploy record of an issue),
//! [`Stacks`] (multi-service benches) and [`power::Power`] (sleep and wake in place).
//! [`docker`] implements all three with containers; [`swarm`] runs benches as services and
//! keeps markers as swarm configs, with Docker's image role.

pub mod disk;
pub mod docker;
pub mod egress;
pub mod endpoint;
pub mod extras;
pub mod power;
pub mod swarm;
pub use extras::{ContainerExtras, CopyContent, CopySpec, Namespace};

use crate::output::SharedReporter;
use crate::Result;
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::collections::HashMap;
use std::pin::Pin;

/// Labels benchctl puts on what it creates; list, teardown and cleanup find benches by them.
pub mod labels {
    /// Marks a bench's network internal (no way out of the bench).
    pub const INTERNAL: &str = "benchctl.internal";
    pub const MANAGED: &str = "benchctl.managed";
    pub const ISSUE: &str = "benchctl.issue";
    pub const BRANCH: &str = "benchctl.branch";
    pub const COMMIT: &str = "benchctl.commit";
    pub const REPO: &str = "benchctl.repo";
    pub const URL: &str = "benchctl.url";
    pub const PORT: &str = "benchctl.port";
    pub const DEPLOYED_AT: &str = "benchctl.deployed-at";
    pub const PUBLIC_HOST: &str = "benchctl.public-host";
    /// What a non-bench object is: `lock` and `result` markers, `build-step` containers (a
    /// commit's short-lived container); absent on benches.
    pub const ROLE: &str = "benchctl.role";
    /// The [`ROLE`] of the container a build's commit step makes and removes.
    pub const BUILD_STEP: &str = "build-step";

    /// What a non-bench object is ([`ROLE`]); `None` for benches and their images (an image
    /// committed by a build step carries the role emptied, since a commit keeps its
    /// container's labels).
    pub fn role(labels: &std::collections::HashMap<String, String>) -> Option<&str> {
        labels
            .get(ROLE)
            .map(String::as_str)
            .filter(|r| !r.is_empty())
    }
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
    /// The backend that made a multi-service bench's network, volumes and services.
    pub const BACKEND: &str = "benchctl.backend";
    /// The memory limit of a bench (bytes): what it reserves while it runs (the cap).
    pub const MEMORY: &str = "benchctl.memory";
    /// The path a bench's readiness is asked at (a wake asks it again).
    pub const HEALTH_PATH: &str = "benchctl.health-path";

    /// Prefixes of the labels only benchctl and the operator write: benchctl's own (finding and
    /// hiding benches), the proxy's (routing host names) and the engine's (swarm tasks,
    /// compose projects). A bench's image may carry none that benchctl did not write, since a
    /// container cannot drop its image's labels.
    pub const RESERVED_PREFIXES: &[&str] = &["benchctl.", "traefik.", "com.docker."];

    /// The labels of `image` under a [`RESERVED_PREFIXES`] prefix that are not exactly what
    /// benchctl wrote (`expected`), sorted; an empty value counts too.
    pub fn foreign(
        image: &std::collections::HashMap<String, String>,
        expected: &std::collections::HashMap<String, String>,
    ) -> Vec<String> {
        let mut out: Vec<String> = image
            .iter()
            .filter(|(k, _)| {
                let k = k.to_ascii_lowercase();
                RESERVED_PREFIXES.iter().any(|p| k.starts_with(p))
            })
            .filter(|(k, v)| expected.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// A label value from free text (a branch name, a repository): readable but bounded.
    pub fn value(v: &str) -> String {
        v.chars().take(255).collect()
    }

    /// The label filter of benchctl's markers of one role (`lock`, `result`, `pin`).
    pub fn role_filter(role: &str) -> Vec<String> {
        vec![format!("{MANAGED}=true"), format!("{ROLE}={role}")]
    }

    /// The label filter of what benchctl made for `issue`.
    pub fn issue_filter(issue: &str) -> Vec<String> {
        vec![format!("{MANAGED}=true"), format!("{ISSUE}={issue}")]
    }

    /// The labels of what benchctl makes for `issue` ([`issue_filter`] as labels).
    pub fn issue_labels(issue: &str) -> std::collections::HashMap<String, String> {
        std::collections::HashMap::from([
            (MANAGED.to_string(), "true".to_string()),
            (ISSUE.to_string(), issue.to_string()),
        ])
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
    /// Otherwise the bench's own network, made with these labels unless it is there, where it
    /// publishes its port: it reaches no other bench (engines without one publish as
    /// before).
    pub own_network: Option<(String, HashMap<String, String>)>,
    /// The bench this one replaces. Plain containers start beside it (the orchestration
    /// removes it once the new one answers); a swarm service is updated in place.
    pub replaces: Option<String>,
    /// What the readiness probe asks (a swarm service's health check asks it too).
    pub health_path: String,
    /// How long the bench may take to answer.
    pub ready_timeout: std::time::Duration,
    /// Capabilities the operator adds to [`BENCH_CAPABILITIES`] (`--cap-add`).
    pub cap_add: Vec<String>,
}

/// The kernel capabilities a bench keeps: Docker's default set without what a web app does
/// not need (raw sockets, device nodes, audit writes, file capabilities, chroot). Every other
/// one is dropped, and the operator adds exceptions with `--cap-add`.
pub const BENCH_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
];

/// The capabilities of a bench: [`BENCH_CAPABILITIES`] and the operator's `extra`.
pub fn bench_capabilities(extra: &[String]) -> Vec<String> {
    let mut caps: Vec<String> = BENCH_CAPABILITIES.iter().map(|c| c.to_string()).collect();
    for c in extra {
        if !caps.contains(c) {
            caps.push(c.clone());
        }
    }
    caps
}

/// An engine's BuildKit.
#[derive(Debug, Clone)]
pub struct BuildKit {
    /// `Docker 20.10.24, API 1.41`.
    pub version: String,
    /// What bounds its steps' memory (a sentence), or why nothing does: the engine's BuildKit
    /// ignores the build API's limits (`engine/docker/build_bound.rs`).
    pub bound: std::result::Result<String, String>,
}

/// Resource limits of a bench (their defaults are the settings' own, `settings/keys.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids: i64,
}

/// What the engine says about one bench (a container, or a service and its task).
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
    /// When the engine made it (Unix seconds; listings only).
    pub created: Option<i64>,
}

/// Which of the engine's builders builds an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Builder {
    /// The classic builder: a container and a commit per instruction, run under the bench's
    /// memory and CPU limits.
    #[default]
    Classic,
    /// The engine's BuildKit (Docker 18.09 and newer): `RUN --mount`, skipped stages,
    /// configuration without a commit; its steps run without the bench's limits.
    BuildKit,
}

impl Builder {
    pub fn as_str(self) -> &'static str {
        match self {
            Builder::Classic => "classic",
            Builder::BuildKit => "buildkit",
        }
    }
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// The Dockerfile, relative to the context root (slash-separated).
    pub dockerfile: String,
    pub tag: String,
    pub labels: HashMap<String, String>,
    /// `--build-arg` values.
    pub build_args: std::collections::BTreeMap<String, String>,
    /// The stage to build (`--target`).
    pub target: Option<String>,
    /// Labels of what the build makes besides the image (a commit step's container): whose it
    /// is, down to the deploy, so that an interruption's cleanup finds it.
    pub owner: HashMap<String, String>,
    /// The bench's memory and CPU limits, which its build gets too (`None`: unlimited; the
    /// classic builder's only).
    pub limits: Option<Limits>,
    pub builder: Builder,
    /// The network of the build's steps.
    pub network: BuildNetwork,
    /// Build secrets by id (`RUN --mount=type=secret,id=...`; BuildKit only).
    pub secrets: std::collections::BTreeMap<String, docker::SecretSource>,
}

/// The network a build's steps run on (`--build-network`, the operator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildNetwork {
    /// The engine's default bridge: `RUN` steps reach package registries (and, unless the
    /// benches' egress is closed, the host's link-local addresses).
    #[default]
    Default,
    /// No network: a `RUN` step that downloads fails.
    None,
}

impl BuildNetwork {
    pub fn parse(s: &str) -> Option<BuildNetwork> {
        match s {
            "default" => Some(BuildNetwork::Default),
            "none" => Some(BuildNetwork::None),
            _ => None,
        }
    }
}

/// A marker: a named object that runs nothing and holds labels (an issue's lock, the result
/// of its last deploy). Creating one is atomic on its name.
#[derive(Debug, Clone)]
pub struct Marker {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    /// What the engine keeps it as.
    pub kind: MarkerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// A never-started container (the docker backend).
    Container,
    /// A swarm config (names unique across the swarm).
    Config,
}

/// Images: built from a streamed context, inspected, committed, listed and removed.
#[async_trait]
pub trait Images: Send + Sync {
    /// Builds from a streamed context; returns the image id. Build output goes to `reporter`.
    async fn build(
        &self,
        spec: &BuildSpec,
        context: ContextStream,
        reporter: &SharedReporter,
    ) -> Result<String>;
    /// The image `name` (a tag or an id), `None` when there is none.
    async fn inspect(&self, name: &str) -> Result<Option<ImageInfo>>;
    /// Applies Dockerfile configuration instructions (`changes`, one per line) to `image` in one
    /// commit, tagged `tag`; returns the new image's id. The step's short-lived container
    /// carries `owner` (and the [`labels::BUILD_STEP`] role) from its creation, so that an
    /// interrupted commit leaves nothing [`Images::remove_build_steps`] cannot find.
    async fn commit(
        &self,
        image: &str,
        changes: &str,
        tag: &str,
        owner: &HashMap<String, String>,
    ) -> Result<String>;
    /// Waits (a minute at most) for the steps this process started and a dropped deploy
    /// could not await: they then have removed what they made.
    async fn settle(&self) {}
    /// The build-step containers carrying all `labels`: name and labels.
    async fn build_steps(
        &self,
        labels: &[String],
    ) -> Result<Vec<(String, HashMap<String, String>)>>;
    /// Removes the build-step containers carrying all `labels`; returns their names.
    async fn remove_build_steps(&self, labels: &[String]) -> Result<Vec<String>>;
    /// Images carrying all `labels` (`key=value`).
    async fn list(&self, labels: &[String]) -> Result<Vec<ImageInfo>>;
    /// Removes an image; one already gone is not an error.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Pulls `image` (a service's `image:` of a multi-service bench) with the engine's own
    /// credentials.
    async fn pull(&self, image: &str) -> Result<()>;
    /// What benches hold on the engine's disk (an engine that cannot tell: nothing).
    async fn disk(&self) -> Result<disk::DiskUsage> {
        Ok(disk::DiskUsage::default())
    }
    /// Whether this engine can build with BuildKit (its version, and what bounds its steps),
    /// or why not.
    async fn buildkit(&self) -> std::result::Result<BuildKit, String> {
        Err("this engine has no BuildKit".into())
    }
}

/// Benches: a new version starts as a candidate beside the current one (or, on a swarm, as
/// the update of its service), is promoted once it answers, or discarded.
#[async_trait]
pub trait Benches: Send + Sync {
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
    /// Starts a candidate version of the bench `spec.name`; returns its id. With
    /// `spec.replaces`, a container starts beside the current bench under a name of its own
    /// (`<name>-next-<random>`), a service is updated in place.
    async fn start(&self, spec: &ContainerSpec) -> Result<String>;
    /// Makes the candidate `id` the bench named `name` (a container is renamed; an updated
    /// service already is the bench).
    async fn promote(&self, id: &str, name: &str) -> Result<()>;
    /// Abandons a version that failed or was interrupted before it became the bench: a
    /// container is removed; a service updated in place goes back to its previous version.
    async fn discard(&self, id: &str) -> Result<()>;
    /// Removes a bench (stopping it first); one already gone is not an error.
    async fn remove(&self, id: &str) -> Result<()>;
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>>;
    /// Benches (running or not) carrying all `labels` (`key=value`, exact match).
    async fn list(&self, labels: &[String]) -> Result<Vec<ContainerInfo>>;
    /// The last `n` lines the bench printed.
    async fn logs_tail(&self, id: &str, n: usize) -> Result<Vec<String>>;
    /// The bench's output (stdout and stderr), the last `tail` lines first, then, with
    /// `follow`, everything it prints until it stops.
    fn logs(&self, id: &str, follow: bool, tail: Option<usize>) -> LogStream;
}

/// Markers: created atomically by name (`None` when the name is taken), read, listed by label
/// and removed.
#[async_trait]
pub trait Markers: Send + Sync {
    async fn create(&self, name: &str, labels: &HashMap<String, String>) -> Result<Option<String>>;
    async fn get(&self, name: &str) -> Result<Option<Marker>>;
    /// Markers carrying all `labels`.
    async fn list(&self, labels: &[String]) -> Result<Vec<Marker>>;
    /// Removes a marker; one already gone is not an error.
    async fn remove(&self, marker: &Marker) -> Result<()>;
}

/// A volume mounted into a service of a multi-service bench.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceMount {
    /// The engine's volume (`None`: an anonymous one).
    pub volume: Option<String>,
    pub target: String,
    pub read_only: bool,
}

/// A service's health check, as the engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    pub interval: Option<std::time::Duration>,
    pub timeout: Option<std::time::Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<std::time::Duration>,
}

/// One container of a multi-service bench, on the bench's own network.
#[derive(Debug, Clone, Default)]
pub struct ServiceSpec {
    /// The container's name.
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    /// `NAME=value` entries.
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// The bench's network, and the names the service answers to on it.
    pub network: String,
    pub aliases: Vec<String>,
    pub mounts: Vec<ServiceMount>,
    pub tmpfs: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    /// Compose's `restart` (`no`, `always`, `on-failure`, `unless-stopped`).
    pub restart: Option<String>,
    pub limits: Limits,
    pub health: Option<HealthSpec>,
    /// A container port published on `bind` (a port of the engine's choosing).
    pub publish: Option<(u16, String)>,
    /// Capabilities the operator adds to [`BENCH_CAPABILITIES`].
    pub cap_add: Vec<String>,
    /// The bench this one replaces (the web service's running version): a container starts
    /// beside it under a name of its own (`<name>-next-<random>`), a swarm service is updated
    /// in place, start-first.
    pub replaces: Option<String>,
    /// The web service's readiness (a swarm writes its health check from it when the file
    /// has none).
    pub probe: Option<WebProbe>,
    /// A network the service joins besides the bench's: the reverse proxy's, which routes to
    /// the web service (then nothing is published).
    pub proxy_network: Option<String>,
    /// What the Compose file sets beyond this.
    pub extras: ContainerExtras,
    /// Files copied in before the container starts.
    pub copies: Vec<CopySpec>,
}

/// What the readiness probe of a multi-service bench's web service asks.
#[derive(Debug, Clone, PartialEq)]
pub struct WebProbe {
    /// The container port.
    pub port: u16,
    /// The readiness path.
    pub path: String,
    /// How long the service may take to answer.
    pub timeout: std::time::Duration,
}

/// Multi-service benches: the bench's network and volumes, and its services' containers.
#[async_trait]
pub trait Stacks: Send + Sync {
    /// Whether this engine runs multi-service benches at all (checked before any work).
    fn supported(&self) -> Result<()> {
        Ok(())
    }
    /// Creates the network `name` unless it exists.
    async fn ensure_network(&self, name: &str, labels: &HashMap<String, String>) -> Result<()>;
    /// Creates the volume `name` unless it exists.
    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()>;
    /// Starts a service (a container, or a one-replica swarm service); returns its id. With
    /// `spec.replaces`, a new version of the web service starts as [`Benches::start`] starts
    /// a bench's.
    async fn run_service(&self, spec: &ServiceSpec) -> Result<String>;
    /// A service as [`run_service`](Stacks::run_service) started it: `running`, `exited`
    /// (with its exit code) or `created`, and its health.
    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>>;
    /// The services carrying all `labels` (whatever their role).
    async fn services(&self, labels: &[String]) -> Result<Vec<ContainerInfo>>;
    /// Runs `spec` once, to completion, in a container of its own on the bench's network (a
    /// one-off hook), its output lines to `reporter`; returns the exit code and the last
    /// lines. The container is removed whatever happens; past `timeout` the wait stops (an
    /// error).
    async fn run_once(
        &self,
        spec: &ServiceSpec,
        timeout: std::time::Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)>;
    /// Runs `cmd` in the running container `id`, its output lines to `reporter`; returns the
    /// exit code and the last lines. Past `timeout` the wait stops (an error).
    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: std::time::Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)>;
    /// Which backend made a multi-service bench's parts (`docker` or `swarm`): its
    /// [`labels::BACKEND`] label, so that clean-up never takes the other backend's.
    fn kind(&self) -> &'static str {
        "docker"
    }
    /// The one-off hook containers carrying all `labels` are removed (what a killed deploy
    /// left); returns their names.
    async fn remove_hooks(&self, labels: &[String]) -> Result<Vec<String>>;
    /// The networks carrying all `labels`: name and labels.
    async fn networks(&self, labels: &[String]) -> Result<Vec<(String, HashMap<String, String>)>>;
    /// The volumes carrying all `labels`: name and labels.
    async fn volumes(&self, labels: &[String]) -> Result<Vec<(String, HashMap<String, String>)>>;
    /// Removes the networks carrying all `labels` (after their containers); returns their names.
    async fn remove_networks(&self, labels: &[String]) -> Result<Vec<String>>;
    /// Removes the volumes carrying all `labels`; returns their names.
    async fn remove_volumes(&self, labels: &[String]) -> Result<Vec<String>>;
    /// Removes the files a swarm keeps for services (configs) labelled with `labels`; a
    /// single engine keeps none (copies live in the containers).
    async fn remove_files(&self, labels: &[String]) -> Result<Vec<String>> {
        let _ = labels;
        Ok(Vec::new())
    }
}

/// An engine: its roles.
pub struct Engine {
    pub images: Box<dyn Images>,
    pub benches: Box<dyn Benches>,
    pub markers: Box<dyn Markers>,
    pub stacks: Box<dyn Stacks>,
    /// Sleeping and waking benches in place.
    pub power: Box<dyn power::Power>,
}

/// Raw output of a bench.
pub type LogStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// Where benches run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// Containers on the engine.
    #[default]
    Docker,
    /// One-replica services on the swarm the engine manages.
    Swarm(swarm::SwarmOptions),
}

impl Backend {
    /// Connects to the engine of this backend.
    pub async fn connect(&self) -> Result<Engine> {
        match self {
            Backend::Docker => Ok(docker::DockerEngine::connect().await?.engine()),
            Backend::Swarm(o) => Ok(swarm::SwarmEngine::connect(o.clone()).await?.engine()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::labels;
    use std::collections::HashMap;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_what_benchctl_wrote_may_sit_under_the_reserved_prefixes() {
        let written = map(&[("benchctl.issue", "P-1"), ("benchctl.role", "")]);
        let image = map(&[
            ("benchctl.issue", "P-1"),
            ("benchctl.role", ""),
            ("org.opencontainers.image.title", "app"),
            ("maintainer", "me"),
        ]);
        assert!(labels::foreign(&image, &written).is_empty());
        for (k, v) in [
            (
                "traefik.http.routers.x.rule",
                "Host(`p-2.bench.example.com`)",
            ),
            ("traefik.enable", ""),
            ("benchctl.role", "x"),
            ("benchctl.issue", "P-2"),
            ("benchctl.anything", ""),
            ("com.docker.swarm.task.id", "x"),
            ("Traefik.HTTP.routers.y.rule", "Host(`a`)"),
        ] {
            let mut bad = image.clone();
            bad.insert(k.to_string(), v.to_string());
            assert_eq!(labels::foreign(&bad, &written), vec![k.to_string()], "{k}");
        }
    }
}
