//! A Compose file made into what benchctl runs: variables interpolated, every form normalised
//! (one command shape, `environment` as a map with `env_file`s merged in, ports as container
//! ports, `depends_on` with conditions, volumes as named-volume mounts), values typed and
//! checked. What a branch may not have (a bind mount from the host, a path out of the branch,
//! an unknown condition) is refused naming the service and the key.

use super::raw;
use crate::engine::{ContainerExtras, Namespace};
use std::collections::BTreeMap;
use std::time::Duration;

/// A command or entrypoint: a string (split by the engine's shell-form rules) or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Shell(String),
    Exec(Vec<String>),
}

/// When a dependency counts as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The context, relative to the branch's root (slash-separated, `.` for the root).
    pub context: String,
    /// The Dockerfile, relative to the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// The test; `None` with `disable: true` (or `test: ["NONE"]`).
    pub test: Option<Cmd>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

/// A volume mounted into a service: a named volume of the bench, or an anonymous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub volume: Option<String>,
    pub target: String,
    pub read_only: bool,
}

/// Where a copied file or directory comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A path of the branch from its root (a file or a directory).
    Branch(String),
    /// Text: a secret or config from the bench's environment or `content`.
    Text(String),
}

/// Files copied into a service's container before it starts: a bind mount of the branch's
/// own files, a secret or a config. A copy, not a link: a write in the container changes only
/// the bench.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CopyIn {
    pub from: Source,
    /// The absolute path in the container.
    pub target: String,
    pub read_only: bool,
    /// File mode (secrets and configs: `0444` unless the file says).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLimits {
    pub cpus: Option<f64>,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    /// `deploy.resources.reservations.memory` / `mem_reservation`: a soft limit.
    pub memory_reservation: Option<i64>,
}

/// What a service runs with besides its command and files: the keys the specification runs
/// as written (README: Compose keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    pub labels: BTreeMap<String, String>,
    /// Labels under benchctl's, the proxy's or the engine's prefixes, left off.
    pub dropped_labels: Vec<String>,
    /// Capabilities the service adds (checked against what the operator allows).
    pub cap_add: Vec<String>,
    /// The container's settings as the engine takes them. A namespace or `volumes_from` that
    /// names another service ([`Namespace::Container`]) holds the service's name here; the
    /// deploy makes it that service's container.
    pub container: ContainerExtras,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Service {
    pub build: Option<Build>,
    pub image: Option<String>,
    pub command: Option<Cmd>,
    pub entrypoint: Option<Cmd>,
    /// `None`: named without a value and not set in the bench's environment.
    pub environment: BTreeMap<String, Option<String>>,
    pub expose: Vec<String>,
    /// Container ports the bench publishes (the host port is always benchctl's choice).
    pub ports: Vec<u16>,
    pub depends_on: BTreeMap<String, Condition>,
    pub healthcheck: Option<Health>,
    pub volumes: Vec<Mount>,
    pub copies: Vec<CopyIn>,
    pub tmpfs: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub restart: Option<String>,
    pub limits: ServiceLimits,
    pub profiles: Vec<String>,
    /// The bench's networks the service joins, each with the names it answers to there
    /// (`container_name`, `hostname`, links and aliases).
    pub networks: BTreeMap<String, Vec<String>>,
    /// Containers of the service (`deploy.replicas`, `scale`).
    pub replicas: u32,
    /// `links` as written (`db` or `db:alias`): each alias becomes a name the linked service
    /// answers to on its networks.
    pub links: Vec<String>,
    pub run: Runtime,
}

/// A network of the bench.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// The network services join when the file names none (Compose's `default`).
pub const DEFAULT_NETWORK: &str = "default";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    pub name: Option<String>,
    /// The services that run (those of no profile, or of an active one).
    pub services: BTreeMap<String, Service>,
    pub volumes: Vec<String>,
    /// The bench's networks by the file's names (`default` when a service joins none).
    pub networks: BTreeMap<String, Network>,
    /// `x-benchctl: { web: ... }`.
    pub web: Option<String>,
    /// Every service of the file in the file's order (the web service's choice breaks ties by
    /// it); set by [`super::load`] from the file's tree.
    pub order: Vec<String>,
    /// What the file's author should know: keys accepted and ignored, labels left off, how
    /// the web service was chosen.
    pub notes: Vec<String>,
}

/// What a conversion needs from outside the file.
pub struct Inputs<'a> {
    /// The bench's environment settings (interpolation, and values for bare names).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a file of the branch by its path from the root (`env_file`).
    pub read: &'a dyn Fn(&str) -> Result<String, String>,
    /// The file's directory, relative to the branch's root (`""` at the root).
    pub dir: &'a str,
    /// Profiles the operator turned on.
    pub profiles: &'a [String],
    /// What the operator allows beyond a bench's own (`compose-allow`).
    pub allow: &'a std::collections::BTreeSet<super::fate::Switch>,
    /// Capabilities the operator adds to every bench (`--cap-add`).
    pub cap_add: &'a [String],
    /// Containers a service may ask for (`max-replicas`).
    pub max_replicas: u32,
}

/// The top level's secrets and configs, networks and volumes, as services refer to them.
pub(super) struct Top {
    pub secrets: BTreeMap<String, Source>,
    pub configs: BTreeMap<String, Source>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: Vec<String>,
}

/// Converts `file`; errors name the service and the key (the caller adds the file).
pub fn convert(file: raw::File, inputs: &Inputs) -> Result<Project, String> {
    let ip = |v: &str, at: &str| {
        super::interpolate::interpolate(v, inputs.env).map_err(|e| format!("{at}: {e}"))
    };
    let top = Top {
        secrets: sources(file.secrets, "secrets", false, inputs, &ip)?,
        configs: sources(file.configs, "configs", true, inputs, &ip)?,
        networks: networks(file.networks, &ip)?,
        volumes: file.volumes.into_keys().collect(),
    };
    let mut services = BTreeMap::new();
    for (name, s) in file.services {
        let profiles: Vec<String> = s
            .profiles
            .iter()
            .map(|p| ip(p, &format!("service `{name}`, `profiles`")))
            .collect::<Result<_, _>>()?;
        if !profiles.is_empty() && !profiles.iter().any(|p| inputs.profiles.contains(p)) {
            continue;
        }
        let cx = super::service::Cx {
            name: &name,
            inputs,
            ip: &ip,
            top: &top,
        };
        let svc = super::service::convert(&cx, s)?;
        services.insert(name, Service { profiles, ..svc });
    }
    if services.is_empty() {
        return Err("no service runs (each has a profile that is not turned on)".into());
    }
    check_references(&services, &top)?;
    link_aliases(&mut services);
    let mut networks = top.networks;
    if services
        .values()
        .any(|s| s.networks.contains_key(DEFAULT_NETWORK))
    {
        networks.entry(DEFAULT_NETWORK.to_string()).or_default();
    }
    Ok(Project {
        name: file.name.map(|n| ip(&n, "`name`")).transpose()?,
        services,
        volumes: top.volumes,
        networks,
        web: file
            .x_benchctl
            .and_then(|x| x.web)
            .map(|w| ip(&w, "`x-benchctl.web`"))
            .transpose()?,
        order: Vec::new(),
        notes: Vec::new(),
    })
}

/// Each `links: [service:alias]` entry makes `alias` a name of `service` on its networks.
fn link_aliases(services: &mut BTreeMap<String, Service>) {
    let links: Vec<(String, String)> = services
        .values()
        .flat_map(|s| s.links.iter())
        .filter_map(|l| l.split_once(':'))
        .map(|(s, a)| (s.to_string(), a.to_string()))
        .collect();
    for (target, alias) in links {
        if let Some(t) = services.get_mut(&target) {
            for aliases in t.networks.values_mut() {
                if !aliases.contains(&alias) {
                    aliases.push(alias.clone());
                }
            }
        }
    }
}

/// Every volume, network and service a service names exists.
fn check_references(services: &BTreeMap<String, Service>, top: &Top) -> Result<(), String> {
    for (name, s) in services {
        for m in &s.volumes {
            if let Some(v) = &m.volume {
                if !top.volumes.contains(v) {
                    return Err(format!(
                        "service `{name}`, `volumes`: volume `{v}` is not declared under the \
                         top-level `volumes`"
                    ));
                }
            }
        }
        for n in s.networks.keys() {
            if n != DEFAULT_NETWORK && !top.networks.contains_key(n) {
                return Err(format!(
                    "service `{name}`, `networks`: network `{n}` is not declared under the \
                     top-level `networks`"
                ));
            }
        }
        let c = &s.run.container;
        let shared = [&c.network_mode, &c.pid, &c.ipc];
        let named = c
            .volumes_from
            .iter()
            .chain(shared.into_iter().flatten().filter_map(|m| match m {
                Namespace::Container(n) => Some(n),
                _ => None,
            }));
        for dep in s.depends_on.keys().chain(named) {
            if !services.contains_key(dep) {
                return Err(format!(
                    "service `{name}`: `{dep}` is not a service that runs"
                ));
            }
        }
    }
    Ok(())
}

/// The top-level secrets or configs: a file of the branch, a variable of the bench's
/// environment, or (configs) `content`.
fn sources(
    raw: BTreeMap<String, raw::TopFile>,
    what: &str,
    content: bool,
    inputs: &Inputs,
    ip: &Ip,
) -> Result<BTreeMap<String, Source>, String> {
    let mut out = BTreeMap::new();
    for (name, f) in raw {
        let at = format!("{what}.{name}");
        let src = match (f.file, f.environment, f.content) {
            (Some(file), None, None) => {
                let file = ip(&file, &at)?;
                let path = inside(inputs.dir, &file)
                    .ok_or_else(|| format!("`{at}`: `{file}` is outside the branch"))?;
                Source::Branch(path)
            }
            (None, Some(var), None) => {
                let var = ip(&var, &at)?;
                let value = (inputs.env)(&var).ok_or_else(|| {
                    format!(
                        "`{at}`: the bench's environment has no `{var}` (set it with `env` in \
                         the operator's settings)"
                    )
                })?;
                Source::Text(value)
            }
            (None, None, Some(c)) if content => Source::Text(ip(&c, &at)?),
            _ if f.external.as_deref() == Some("true") => {
                return Err(format!(
                    "`{at}`: an external {what} is kept by a swarm outside the bench; give the \
                     bench its own with `file` or `environment`"
                ))
            }
            _ => {
                return Err(format!(
                    "`{at}` needs exactly one of `file`, `environment`{}",
                    if content { " or `content`" } else { "" }
                ))
            }
        };
        out.insert(name, src);
    }
    Ok(out)
}

/// The top-level networks.
fn networks(
    raw: BTreeMap<String, Option<raw::TopNetwork>>,
    ip: &Ip,
) -> Result<BTreeMap<String, Network>, String> {
    let mut out = BTreeMap::new();
    for (name, n) in raw {
        let n = n.unwrap_or_default();
        let at = format!("networks.{name}");
        let internal = n
            .internal
            .map(|v| super::service::flag(&v, &format!("`{at}.internal`")))
            .transpose()?
            .unwrap_or(false);
        let (labels, _) = super::service::labels(n.labels, ip, &format!("`{at}.labels`"))?;
        out.insert(name, Network { internal, labels });
    }
    Ok(out)
}

pub(super) type Ip<'a> = dyn Fn(&str, &str) -> Result<String, String> + 'a;

/// `path` (relative to `dir`, both slash-separated) as a path from the branch's root, when it
/// stays inside the branch.
pub(super) fn inside(dir: &str, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// A Compose duration: `1m30s`, `2s`, `500ms`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "us" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(secs).ok()?;
    }
    (total.as_secs() <= crate::settings::values::MAX_SECONDS).then_some(total)
}
