//! One service of a Compose file made into what benchctl runs: its command, environment (with
//! its `env_file`s), build, ports, dependencies and health check, then its volumes (named
//! volumes of the bench, copies of the branch's own files, host paths only where the operator
//! allows), secrets and configs, networks with the names it answers to, and the keys run as
//! written ([`super::runtime`]). Errors name the service and the key.

use super::fate::Switch;
use super::project::{
    inside, parse_duration, Build, Cmd, Condition, CopyIn, Health, Inputs, Ip, Mount, Service,
    ServiceLimits, Source, Top, DEFAULT_NETWORK,
};
use super::raw;
use std::collections::BTreeMap;
use std::time::Duration;

/// What converting one service needs.
pub(super) struct Cx<'a> {
    pub name: &'a str,
    pub inputs: &'a Inputs<'a>,
    pub ip: &'a Ip<'a>,
    pub top: &'a Top,
}

impl Cx<'_> {
    pub fn at(&self, key: &str) -> String {
        format!("service `{}`, `{key}`", self.name)
    }
    pub fn text(&self, v: &str, key: &str) -> Result<String, String> {
        (self.ip)(v, &self.at(key))
    }
    pub fn opt(&self, v: Option<raw::Text>, key: &str) -> Result<Option<String>, String> {
        v.map(|v| self.text(&v, key)).transpose()
    }
    pub fn list(&self, v: &[raw::Text], key: &str) -> Result<Vec<String>, String> {
        v.iter().map(|t| self.text(t, key)).collect()
    }
    fn cmd(&self, c: Option<raw::Command>, key: &str) -> Result<Option<Cmd>, String> {
        Ok(match c {
            None => None,
            Some(raw::Command::Shell(s)) => Some(Cmd::Shell(self.text(&s, key)?)),
            Some(raw::Command::Exec(v)) => Some(Cmd::Exec(self.list(&v, key)?)),
        })
    }
    /// A refusal of what `switch` guards, unless the operator allows it.
    pub fn guard(&self, switch: Switch, key: &str, what: &str) -> Result<(), String> {
        if self.inputs.allow.contains(&switch) {
            return Ok(());
        }
        Err(format!(
            "{}: `{what}` {}",
            self.at(key),
            super::audit::switch_refusal(switch)
        ))
    }
}

/// `true` / `false` as Compose writes them.
pub(super) fn flag(v: &str, at: &str) -> Result<bool, String> {
    match v {
        "true" | "True" | "yes" => Ok(true),
        "false" | "False" | "no" => Ok(false),
        _ => Err(format!("{at}: `{v}` is not true or false")),
    }
}

/// `key=value` entries or a map, interpolated (a bare key has an empty value).
pub(super) fn key_values(
    l: Option<raw::StringOrMap>,
    ip: &Ip,
    at: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    match l {
        None => {}
        Some(raw::StringOrMap::Map(m)) => {
            for (k, v) in m {
                out.insert(k, ip(&v.unwrap_or_default(), at)?);
            }
        }
        Some(raw::StringOrMap::List(v)) => {
            for e in v {
                let e = ip(&e, at)?;
                let (k, v) = e.split_once('=').unwrap_or((&e, ""));
                out.insert(k.trim().to_string(), v.to_string());
            }
        }
    }
    Ok(out)
}

/// Labels as a map, interpolated, without those under the prefixes benchctl, the proxy and the
/// engine write (they find, hide and route benches): those are dropped and named.
pub(super) fn labels(
    l: Option<raw::StringOrMap>,
    ip: &Ip,
    at: &str,
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let (dropped, kept): (BTreeMap<_, _>, BTreeMap<_, _>) =
        key_values(l, ip, at)?.into_iter().partition(|(k, _)| {
            let k = k.to_ascii_lowercase();
            super::fate::RESERVED_LABELS
                .iter()
                .any(|p| k.starts_with(p))
        });
    Ok((kept, dropped.into_keys().collect()))
}

/// Converts service `s`.
pub(super) fn convert(cx: &Cx, s: raw::Service) -> Result<Service, String> {
    let mut run = super::runtime::convert(cx, &s)?;
    let replicas = replicas(cx, &s)?;
    let restart = match cx.opt(s.restart.clone(), "restart")? {
        Some(r) => Some(r),
        None => restart_policy(cx, &s)?,
    };
    let links = cx.list(&s.links, "links")?;
    let environment = environment(cx, s.env_file, s.environment)?;
    let build = s.build.map(|b| build(cx, b)).transpose()?;
    let image = cx.opt(s.image, "image")?;
    if build.is_none() && image.is_none() {
        return Err(format!(
            "service `{}` has neither `build` nor `image`",
            cx.name
        ));
    }
    let (volumes, mut copies, binds) = volumes(cx, s.volumes)?;
    copies.extend(files(cx, &s.secrets, "secrets")?);
    copies.extend(files(cx, &s.configs, "configs")?);
    run.container.binds = binds;
    Ok(Service {
        build,
        image,
        command: cx.cmd(s.command, "command")?,
        entrypoint: cx.cmd(s.entrypoint, "entrypoint")?,
        environment,
        expose: cx.list(&s.expose, "expose")?,
        ports: ports(cx, s.ports)?,
        depends_on: {
            let mut d = depends_on(cx, s.depends_on)?;
            for l in &links {
                let target = l.split(':').next().unwrap_or_default().to_string();
                d.entry(target).or_insert(Condition::Started);
            }
            d
        },
        healthcheck: s.healthcheck.map(|h| health(cx, h)).transpose()?,
        volumes,
        copies,
        tmpfs: cx.list(
            &s.tmpfs.map(raw::OneOrMany::into_vec).unwrap_or_default(),
            "tmpfs",
        )?,
        working_dir: cx.opt(s.working_dir, "working_dir")?,
        user: cx.opt(s.user, "user")?,
        restart,
        limits: limits(cx, s.deploy, s.cpus, s.mem_limit, s.pids_limit)?,
        profiles: Vec::new(),
        networks: networks(cx, s.networks, s.container_name, &run.container.hostname)?,
        replicas,
        links,
        run,
    })
}

/// `deploy.restart_policy.condition` as a restart policy, when `restart` is not set.
fn restart_policy(cx: &Cx, s: &raw::Service) -> Result<Option<String>, String> {
    let c = s
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
        .and_then(|r| r.condition.clone());
    Ok(
        match cx.opt(c, "deploy.restart_policy.condition")?.as_deref() {
            None => None,
            Some("none") => Some("no".into()),
            Some("on-failure") => Some("on-failure".into()),
            Some("any") => Some("always".into()),
            Some(other) => {
                return Err(format!(
                    "{}: `{other}` is not none, on-failure or any",
                    cx.at("deploy.restart_policy.condition")
                ))
            }
        },
    )
}

/// The service's containers: `deploy.replicas` or `scale`, one by default, up to the
/// operator's `max-replicas`; a file asking for more is refused rather than silently shrunk.
fn replicas(cx: &Cx, s: &raw::Service) -> Result<u32, String> {
    let asked = s
        .deploy
        .as_ref()
        .and_then(|d| d.replicas.clone())
        .map(|r| (r, "deploy.replicas"))
        .or(s.scale.clone().map(|r| (r, "scale")));
    let Some((r, key)) = asked else { return Ok(1) };
    let r = cx.text(&r, key)?;
    let n: u32 = r
        .parse()
        .map_err(|_| format!("{}: `{r}` is not a count", cx.at(key)))?;
    let max = cx.inputs.max_replicas.max(1);
    if n > max {
        return Err(format!(
            "{}: {n} containers of one service, more than the {max} the operator allows \
             (`max-replicas`; a bench is a copy for testing, not for load)",
            cx.at(key)
        ));
    }
    Ok(n)
}

/// `env_file`s first, `environment` over them, as Compose merges them.
fn environment(
    cx: &Cx,
    files: Option<raw::EnvFiles>,
    env: Option<raw::Environment>,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    for (f, required) in files.map(raw::EnvFiles::into_vec).unwrap_or_default() {
        let f = cx.text(&f, "env_file")?;
        let required = match required {
            Some(r) => flag(&cx.text(&r, "env_file")?, &cx.at("env_file.required"))?,
            None => true,
        };
        let path = inside(cx.inputs.dir, &f)
            .ok_or_else(|| format!("{}: `{f}` is outside the branch", cx.at("env_file")))?;
        let text = match (cx.inputs.read)(&path) {
            Ok(t) => t,
            Err(_) if !required => continue,
            Err(e) => return Err(format!("{}: {e}", cx.at("env_file"))),
        };
        for (k, v) in parse_env_file(&text, cx.inputs.env) {
            out.insert(k, v);
        }
    }
    for (k, v) in entries(env, cx.inputs.env, cx.ip, &cx.at("environment"))? {
        out.insert(k, v);
    }
    Ok(out)
}

/// An env file's `NAME=value` lines (comments and blank lines skipped; a value in matching
/// quotes loses them, as Compose reads `.env` files).
pub fn parse_env_file(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = split_entry(line, env);
        let v = v.map(|v| {
            let t = v.trim();
            let quoted = t.len() >= 2
                && ((t.starts_with('"') && t.ends_with('"'))
                    || (t.starts_with('\'') && t.ends_with('\'')));
            if quoted {
                t[1..t.len() - 1].to_string()
            } else {
                v
            }
        });
        out.push((k, v));
    }
    out
}

fn build(cx: &Cx, b: raw::Build) -> Result<Build, String> {
    let (context, dockerfile, args, target) = match b {
        raw::Build::Context(c) => (c, None, None, None),
        raw::Build::Long(l) => (
            l.context.unwrap_or_else(|| ".".into()),
            l.dockerfile,
            l.args,
            l.target,
        ),
    };
    let context = cx.text(&context, "build")?;
    let context = inside(cx.inputs.dir, &context).ok_or_else(|| {
        format!(
            "{}: context `{context}` is not a directory of the branch",
            cx.at("build")
        )
    })?;
    let args = entries(args, cx.inputs.env, cx.ip, &cx.at("build.args"))?
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(Build {
        context,
        dockerfile: cx
            .opt(dockerfile, "build.dockerfile")?
            .unwrap_or_else(|| "Dockerfile".into()),
        args,
        target: cx.opt(target, "build.target")?,
    })
}

fn ports(cx: &Cx, ports: Vec<raw::Port>) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for p in ports {
        let (target, proto) = match p {
            raw::Port::Short(t) => {
                let t = cx.text(&t, "ports")?;
                let (no_proto, proto) = t.split_once('/').unwrap_or((&t, "tcp"));
                let target = no_proto.rsplit(':').next().unwrap_or_default().to_string();
                (target, proto.to_string())
            }
            raw::Port::Long(l) => (
                cx.text(&l.target, "ports")?,
                cx.opt(l.protocol, "ports")?.unwrap_or_else(|| "tcp".into()),
            ),
        };
        // a range publishes each port; the bench is reached over its first
        let first = target.split('-').next().unwrap_or_default();
        let port = first
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{}: `{target}` is not a container port", cx.at("ports")))?;
        // the bench is reached over HTTP: UDP ports are the service's own business
        if proto == "tcp" && !out.contains(&port) {
            out.push(port);
        }
    }
    Ok(out)
}

fn depends_on(cx: &Cx, d: Option<raw::DependsOn>) -> Result<BTreeMap<String, Condition>, String> {
    let mut out = BTreeMap::new();
    match d {
        None => {}
        Some(raw::DependsOn::List(v)) => {
            for d in v {
                out.insert(cx.text(&d, "depends_on")?, Condition::Started);
            }
        }
        Some(raw::DependsOn::Map(m)) => {
            for (d, long) in m {
                let c = cx.opt(long.condition, "depends_on")?;
                let condition = match c.as_deref() {
                    None | Some("service_started") => Condition::Started,
                    Some("service_healthy") => Condition::Healthy,
                    Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                    Some(other) => {
                        return Err(format!(
                            "{}: condition `{other}` is not one of service_started, \
                             service_healthy, service_completed_successfully",
                            cx.at("depends_on")
                        ))
                    }
                };
                out.insert(d, condition);
            }
        }
    }
    Ok(out)
}

/// A duration key.
pub(super) fn duration(
    cx: &Cx,
    v: Option<raw::Text>,
    key: &str,
) -> Result<Option<Duration>, String> {
    cx.opt(v, key)?
        .map(|d| {
            parse_duration(&d).ok_or_else(|| format!("{}: `{d}` is not a duration", cx.at(key)))
        })
        .transpose()
}

fn health(cx: &Cx, h: raw::Healthcheck) -> Result<Health, String> {
    let disabled = cx.opt(h.disable, "healthcheck.disable")?.as_deref() == Some("true");
    let test = cx.cmd(h.test, "healthcheck.test")?;
    let none = matches!(&test, Some(Cmd::Exec(v)) if v.first().map(String::as_str) == Some("NONE"));
    Ok(Health {
        test: if disabled || none { None } else { test },
        interval: duration(cx, h.interval, "healthcheck.interval")?,
        timeout: duration(cx, h.timeout, "healthcheck.timeout")?,
        retries: cx
            .opt(h.retries, "healthcheck.retries")?
            .map(|r| {
                r.parse()
                    .map_err(|_| format!("{}: `{r}` is not a count", cx.at("healthcheck.retries")))
            })
            .transpose()?,
        start_period: duration(cx, h.start_period, "healthcheck.start_period")?,
    })
}

/// The limits the file asks for (`deploy.resources`, `cpus`, `mem_limit`, `pids_limit`): each
/// is capped by the operator's later.
fn limits(
    cx: &Cx,
    deploy: Option<raw::Deploy>,
    cpus: Option<raw::Text>,
    mem: Option<raw::Text>,
    pids: Option<raw::Text>,
) -> Result<ServiceLimits, String> {
    let r = deploy.and_then(|d| d.resources).unwrap_or_default();
    let l = r.limits.unwrap_or_default();
    let res = r.reservations.unwrap_or_default();
    let (cpus, cpus_key) = match l.cpus {
        Some(c) => (Some(c), "deploy.resources.limits.cpus"),
        None => (cpus, "cpus"),
    };
    let (mem, mem_key) = match l.memory {
        Some(m) => (Some(m), "deploy.resources.limits.memory"),
        None => (mem, "mem_limit"),
    };
    let (pids, pids_key) = match l.pids {
        Some(p) => (Some(p), "deploy.resources.limits.pids"),
        None => (pids, "pids_limit"),
    };
    let memory = |v: Option<raw::Text>, key: &str| {
        cx.opt(v, key)?
            .map(|m| crate::settings::parse_memory(&m).map_err(|e| format!("{}: {e}", cx.at(key))))
            .transpose()
    };
    Ok(ServiceLimits {
        cpus: cx
            .opt(cpus, cpus_key)?
            .map(|c| {
                c.parse::<f64>()
                    .ok()
                    .filter(|c| *c > 0.0 && *c <= 1024.0)
                    .ok_or_else(|| format!("{}: `{c}` is not a number of cores", cx.at(cpus_key)))
            })
            .transpose()?,
        memory: memory(mem, mem_key)?,
        pids: cx
            .opt(pids, pids_key)?
            .map(|p| {
                p.parse::<i64>()
                    .ok()
                    .filter(|p| *p > 0 && *p <= crate::settings::values::MAX_COUNT)
                    .ok_or_else(|| format!("{}: `{p}` is not a process count", cx.at(pids_key)))
            })
            .transpose()?,
        memory_reservation: memory(res.memory, "deploy.resources.reservations.memory")?,
    })
}

/// The networks the service joins, each with its aliases; `default` when it names none.
/// `container_name`, `hostname` and the names of links are names it answers to on each.
fn networks(
    cx: &Cx,
    n: Option<raw::ServiceNetworks>,
    container_name: Option<raw::Text>,
    hostname: &Option<String>,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut common = Vec::new();
    if let Some(c) = cx.opt(container_name, "container_name")? {
        common.push(c);
    }
    common.extend(hostname.iter().cloned());
    let mut out = BTreeMap::new();
    match n {
        None => {
            out.insert(DEFAULT_NETWORK.to_string(), Vec::new());
        }
        Some(raw::ServiceNetworks::List(v)) => {
            for n in cx.list(&v, "networks")? {
                out.insert(n, Vec::new());
            }
        }
        Some(raw::ServiceNetworks::Map(m)) => {
            for (n, e) in m {
                let aliases = cx.list(&e.unwrap_or_default().aliases, "networks")?;
                out.insert(n, aliases);
            }
        }
    }
    for aliases in out.values_mut() {
        for c in &common {
            if !aliases.contains(c) {
                aliases.push(c.clone());
            }
        }
    }
    Ok(out)
}

/// The service's volumes: named and anonymous volumes of the bench, copies of the branch's
/// files, and host paths (the operator's `host-paths` only).
/// A service's named volumes, copies of the branch's files, and host paths (`source:target`).
type Volumes = (Vec<Mount>, Vec<CopyIn>, Vec<String>);

fn volumes(cx: &Cx, v: Vec<raw::Volume>) -> Result<Volumes, String> {
    let (mut mounts, mut copies, mut binds) = (Vec::new(), Vec::new(), Vec::new());
    for v in v {
        let (kind, source, target, read_only) = match v {
            raw::Volume::Short(s) => {
                let s = cx.text(&s, "volumes")?;
                let parts: Vec<&str> = s.split(':').collect();
                let (source, target, mode) = match parts.as_slice() {
                    [t] => (None, *t, None),
                    [s, t] => (Some(*s), *t, None),
                    [s, t, m] => (Some(*s), *t, Some(*m)),
                    _ => {
                        return Err(format!(
                            "{}: `{s}` is not SOURCE:TARGET[:MODE]",
                            cx.at("volumes")
                        ))
                    }
                };
                let ro = mode.is_some_and(|m| m.split(',').any(|o| o == "ro"));
                let path_like =
                    source.is_some_and(|s| s.starts_with(['/', '.', '~']) || s.contains('/'));
                let kind = if path_like { "bind" } else { "volume" };
                (
                    kind.to_string(),
                    source.map(str::to_string),
                    target.to_string(),
                    ro,
                )
            }
            raw::Volume::Long(l) => (
                cx.text(&l.kind, "volumes")?,
                cx.opt(l.source, "volumes")?,
                cx.text(&l.target, "volumes")?,
                cx.opt(l.read_only, "volumes")?.as_deref() == Some("true"),
            ),
        };
        match (kind.as_str(), source) {
            ("volume", volume) => mounts.push(Mount {
                volume,
                target,
                read_only,
            }),
            ("tmpfs", _) => {}
            ("bind", Some(src)) => match bind_source(cx, &src) {
                Some(path) => copies.push(CopyIn {
                    from: Source::Branch(path),
                    target,
                    read_only,
                    mode: None,
                    uid: None,
                    gid: None,
                }),
                None => {
                    cx.guard(Switch::HostPaths, "volumes", &src)?;
                    binds.push(format!(
                        "{src}:{target}{}",
                        if read_only { ":ro" } else { "" }
                    ));
                }
            },
            (other, _) => {
                return Err(format!(
                    "{}: a `{other}` mount is not something a bench has (it takes volumes, \
                     tmpfs and the branch's own files)",
                    cx.at("volumes")
                ))
            }
        }
    }
    Ok((mounts, copies, binds))
}

/// A bind mount's source as a path of the branch, when it is one (relative, staying inside).
fn bind_source(cx: &Cx, src: &str) -> Option<String> {
    if src.starts_with('/') || src.starts_with('~') {
        return None;
    }
    inside(cx.inputs.dir, src)
}

/// The service's secrets or configs as copies into its container.
fn files(cx: &Cx, refs: &[raw::FileRef], what: &str) -> Result<Vec<CopyIn>, String> {
    let top = if what == "secrets" {
        &cx.top.secrets
    } else {
        &cx.top.configs
    };
    let mut out = Vec::new();
    for r in refs {
        let (source, target, uid, gid, mode) = match r {
            raw::FileRef::Short(s) => (cx.text(s, what)?, None, None, None, None),
            raw::FileRef::Long(l) => (
                cx.text(&l.source, what)?,
                cx.opt(l.target.clone(), what)?,
                cx.opt(l.uid.clone(), what)?,
                cx.opt(l.gid.clone(), what)?,
                cx.opt(l.mode.clone(), what)?,
            ),
        };
        let from = top.get(&source).cloned().ok_or_else(|| {
            format!(
                "{}: `{source}` is not declared under the top-level `{what}`",
                cx.at(what)
            )
        })?;
        // Compose's places: secrets under /run/secrets, configs at the root
        let target = match target {
            Some(t) if t.starts_with('/') => t,
            Some(t) if what == "secrets" => format!("/run/secrets/{t}"),
            Some(t) => format!("/{t}"),
            None if what == "secrets" => format!("/run/secrets/{source}"),
            None => format!("/{source}"),
        };
        let num = |v: Option<String>, base: u32| -> Result<Option<u32>, String> {
            v.map(|v| {
                u32::from_str_radix(v.trim_start_matches("0o"), base)
                    .map_err(|_| format!("{}: `{v}` is not a number", cx.at(what)))
            })
            .transpose()
        };
        out.push(CopyIn {
            from,
            target,
            read_only: true,
            mode: num(mode, 8)?.or(Some(0o444)),
            uid: num(uid, 10)?,
            gid: num(gid, 10)?,
        });
    }
    Ok(out)
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
