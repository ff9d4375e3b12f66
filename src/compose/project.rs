//! A Compose file made into what benchctl runs: variables interpolated, every form normalised
//! (one command shape, `environment` as a map with `env_file`s merged in, ports as container
//! ports, `depends_on` with conditions, volumes as named-volume mounts), values typed and
//! checked. What a branch may not have (a bind mount from the host, a path out of the branch,
//! an unknown condition) is refused naming the service and the key.

use super::raw;
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLimits {
    pub cpus: Option<f64>,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
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
    pub tmpfs: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub restart: Option<String>,
    pub limits: ServiceLimits,
    pub profiles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Project {
    pub name: Option<String>,
    /// The services that run (those of no profile, or of an active one).
    pub services: BTreeMap<String, Service>,
    pub volumes: Vec<String>,
    /// `x-benchctl: { web: ... }`.
    pub web: Option<String>,
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
}

/// Converts `file`; errors name the service and the key (the caller adds the file).
pub fn convert(file: raw::File, inputs: &Inputs) -> Result<Project, String> {
    let ip = |v: &str, at: &str| {
        super::interpolate::interpolate(v, inputs.env).map_err(|e| format!("{at}: {e}"))
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
        let svc = service(&name, s, inputs, &ip)?;
        services.insert(name, Service { profiles, ..svc });
    }
    if services.is_empty() {
        return Err("no service runs (each has a profile that is not turned on)".into());
    }
    let volumes: Vec<String> = file.volumes.into_keys().collect();
    for (name, s) in &services {
        for m in &s.volumes {
            if let Some(v) = &m.volume {
                if !volumes.contains(v) {
                    return Err(format!(
                        "service `{name}`, `volumes`: volume `{v}` is not declared under the \
                         top-level `volumes`"
                    ));
                }
            }
        }
        for dep in s.depends_on.keys() {
            if !services.contains_key(dep) {
                return Err(format!(
                    "service `{name}`, `depends_on`: `{dep}` is not a service that runs"
                ));
            }
        }
    }
    Ok(Project {
        name: file.name.map(|n| ip(&n, "`name`")).transpose()?,
        services,
        volumes,
        web: file
            .x_benchctl
            .and_then(|x| x.web)
            .map(|w| ip(&w, "`x-benchctl.web`"))
            .transpose()?,
    })
}

type Ip<'a> = dyn Fn(&str, &str) -> Result<String, String> + 'a;

fn service(name: &str, s: raw::Service, inputs: &Inputs, ip: &Ip) -> Result<Service, String> {
    let at = |key: &str| format!("service `{name}`, `{key}`");
    let opt = |v: Option<raw::Text>, key: &str| v.map(|v| ip(&v, &at(key))).transpose();
    let cmd = |c: Option<raw::Command>, key: &str| -> Result<Option<Cmd>, String> {
        Ok(match c {
            None => None,
            Some(raw::Command::Shell(s)) => Some(Cmd::Shell(ip(&s, &at(key))?)),
            Some(raw::Command::Exec(v)) => Some(Cmd::Exec(
                v.iter()
                    .map(|a| ip(a, &at(key)))
                    .collect::<Result<_, _>>()?,
            )),
        })
    };
    // env files first, `environment` over them, as Compose merges them
    let mut environment = BTreeMap::new();
    for f in s.env_file.map(raw::OneOrMany::into_vec).unwrap_or_default() {
        let f = ip(&f, &at("env_file"))?;
        let path = inside(inputs.dir, &f)
            .ok_or_else(|| format!("{}: `{f}` is outside the branch", at("env_file")))?;
        let text = (inputs.read)(&path).map_err(|e| format!("{}: {e}", at("env_file")))?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = split_entry(line, inputs.env);
            environment.insert(k, v);
        }
    }
    for (k, v) in entries(s.environment, inputs.env, ip, &at("environment"))? {
        environment.insert(k, v);
    }
    let build = match s.build {
        None => None,
        Some(b) => {
            let (context, dockerfile, args, target) = match b {
                raw::Build::Context(c) => (c, None, None, None),
                raw::Build::Long(l) => (
                    l.context.unwrap_or_else(|| ".".into()),
                    l.dockerfile,
                    l.args,
                    l.target,
                ),
            };
            let context = ip(&context, &at("build"))?;
            let context = inside(inputs.dir, &context).ok_or_else(|| {
                format!(
                    "{}: context `{context}` is not a directory of the branch",
                    at("build")
                )
            })?;
            let args = entries(args, inputs.env, ip, &at("build.args"))?
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            Some(Build {
                context,
                dockerfile: opt(dockerfile, "build.dockerfile")?
                    .unwrap_or_else(|| "Dockerfile".into()),
                args,
                target: opt(target, "build.target")?,
            })
        }
    };
    let image = opt(s.image, "image")?;
    if build.is_none() && image.is_none() {
        return Err(format!("service `{name}` has neither `build` nor `image`"));
    }
    let mut ports = Vec::new();
    for p in s.ports {
        let target = match p {
            raw::Port::Short(t) => {
                let t = ip(&t, &at("ports"))?;
                let no_proto = t.split('/').next().unwrap_or_default().to_string();
                no_proto.rsplit(':').next().unwrap_or_default().to_string()
            }
            raw::Port::Long(l) => ip(&l.target, &at("ports"))?,
        };
        let port = target
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{}: `{target}` is not a container port", at("ports")))?;
        ports.push(port);
    }
    let mut depends_on = BTreeMap::new();
    match s.depends_on {
        None => {}
        Some(raw::DependsOn::List(v)) => {
            for d in v {
                depends_on.insert(ip(&d, &at("depends_on"))?, Condition::Started);
            }
        }
        Some(raw::DependsOn::Map(m)) => {
            for (d, long) in m {
                let c = opt(long.condition, "depends_on")?;
                let condition = match c.as_deref() {
                    None | Some("service_started") => Condition::Started,
                    Some("service_healthy") => Condition::Healthy,
                    Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                    Some(other) => {
                        return Err(format!(
                            "{}: condition `{other}` is not one of service_started, \
                             service_healthy, service_completed_successfully",
                            at("depends_on")
                        ))
                    }
                };
                depends_on.insert(d, condition);
            }
        }
    }
    let healthcheck = match s.healthcheck {
        None => None,
        Some(h) => {
            let disabled = opt(h.disable, "healthcheck.disable")?.as_deref() == Some("true");
            let test = cmd(h.test, "healthcheck.test")?;
            let none = matches!(&test, Some(Cmd::Exec(v)) if v.first().map(String::as_str) == Some("NONE"));
            let dur = |v: Option<raw::Text>, key: &str| -> Result<Option<Duration>, String> {
                opt(v, key)?
                    .map(|d| {
                        parse_duration(&d)
                            .ok_or_else(|| format!("{}: `{d}` is not a duration", at(key)))
                    })
                    .transpose()
            };
            Some(Health {
                test: if disabled || none { None } else { test },
                interval: dur(h.interval, "healthcheck.interval")?,
                timeout: dur(h.timeout, "healthcheck.timeout")?,
                retries: opt(h.retries, "healthcheck.retries")?
                    .map(|r| {
                        r.parse().map_err(|_| {
                            format!("{}: `{r}` is not a count", at("healthcheck.retries"))
                        })
                    })
                    .transpose()?,
                start_period: dur(h.start_period, "healthcheck.start_period")?,
            })
        }
    };
    let mut volumes = Vec::new();
    for v in s.volumes {
        volumes.push(mount(v, &at("volumes"), ip)?);
    }
    let limits = match s.deploy.and_then(|d| d.resources).and_then(|r| r.limits) {
        None => ServiceLimits::default(),
        Some(l) => ServiceLimits {
            cpus: opt(l.cpus, "deploy.resources.limits.cpus")?
                .map(|c| {
                    c.parse::<f64>()
                        .ok()
                        .filter(|c| *c > 0.0 && *c <= 1024.0)
                        .ok_or_else(|| {
                            format!(
                                "{}: `{c}` is not a number of cores",
                                at("deploy.resources.limits.cpus")
                            )
                        })
                })
                .transpose()?,
            memory: opt(l.memory, "deploy.resources.limits.memory")?
                .map(|m| {
                    crate::settings::parse_memory(&m)
                        .map_err(|e| format!("{}: {e}", at("deploy.resources.limits.memory")))
                })
                .transpose()?,
            pids: opt(l.pids, "deploy.resources.limits.pids")?
                .map(|p| {
                    p.parse::<i64>()
                        .ok()
                        .filter(|p| *p > 0 && *p <= crate::settings::values::MAX_COUNT)
                        .ok_or_else(|| {
                            format!(
                                "{}: `{p}` is not a process count",
                                at("deploy.resources.limits.pids")
                            )
                        })
                })
                .transpose()?,
        },
    };
    Ok(Service {
        build,
        image,
        command: cmd(s.command, "command")?,
        entrypoint: cmd(s.entrypoint, "entrypoint")?,
        environment,
        expose: s
            .expose
            .iter()
            .map(|e| ip(e, &at("expose")))
            .collect::<Result<_, _>>()?,
        ports,
        depends_on,
        healthcheck,
        volumes,
        tmpfs: s
            .tmpfs
            .map(raw::OneOrMany::into_vec)
            .unwrap_or_default()
            .iter()
            .map(|t| ip(t, &at("tmpfs")))
            .collect::<Result<_, _>>()?,
        working_dir: opt(s.working_dir, "working_dir")?,
        user: opt(s.user, "user")?,
        restart: opt(s.restart, "restart")?,
        limits,
        profiles: Vec::new(),
    })
}

/// `NAME=value` (or a bare `NAME`, whose value is the bench's setting, `None` without one).
fn split_entry(line: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Option<String>) {
    match line.split_once('=') {
        Some((k, v)) => (k.trim().to_string(), Some(v.to_string())),
        None => (line.trim().to_string(), env(line.trim())),
    }
}

/// `environment` / `args` as a map, interpolated.
fn entries(
    e: Option<raw::Environment>,
    env: &dyn Fn(&str) -> Option<String>,
    ip: &Ip,
    at: &str,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    match e {
        None => {}
        Some(raw::Environment::Map(m)) => {
            for (k, v) in m {
                let v = match v {
                    Some(v) => Some(ip(&v, at)?),
                    None => env(&k),
                };
                out.push((k, v));
            }
        }
        Some(raw::Environment::List(l)) => {
            for item in l {
                let item = ip(&item, at)?;
                out.push(split_entry(&item, env));
            }
        }
    }
    Ok(out)
}

/// A service's volume: named or anonymous; a bind mount (a host path) is refused.
fn mount(v: raw::Volume, at: &str, ip: &Ip) -> Result<Mount, String> {
    let bind = |what: &str| {
        Err(format!(
            "{at}: `{what}` mounts a path of the host; a branch gets named volumes only \
             (declare one under the top-level `volumes` and mount it by name)"
        ))
    };
    match v {
        raw::Volume::Short(s) => {
            let s = ip(&s, at)?;
            let parts: Vec<&str> = s.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [t] => (None, *t, None),
                [s, t] => (Some(*s), *t, None),
                [s, t, m] => (Some(*s), *t, Some(*m)),
                _ => return Err(format!("{at}: `{s}` is not SOURCE:TARGET[:MODE]")),
            };
            if let Some(src) = source {
                if src.starts_with(['/', '.', '~']) || src.contains('/') {
                    return bind(&s);
                }
            }
            Ok(Mount {
                volume: source.map(str::to_string),
                target: target.to_string(),
                read_only: mode.is_some_and(|m| m.split(',').any(|o| o == "ro")),
            })
        }
        raw::Volume::Long(l) => {
            let kind = ip(&l.kind, at)?;
            if kind != "volume" {
                return bind(&format!("type: {kind}"));
            }
            Ok(Mount {
                volume: l.source.map(|s| ip(&s, at)).transpose()?,
                target: ip(&l.target, at)?,
                read_only: l.read_only.as_deref() == Some("true"),
            })
        }
    }
}

/// `path` (relative to `dir`, both slash-separated) as a path from the branch's root, when it
/// stays inside the branch.
fn inside(dir: &str, path: &str) -> Option<String> {
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
