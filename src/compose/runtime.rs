//! The keys of a service that Compose runs as written and benchctl does too (host name,
//! labels, stop signal, init, tty, ulimits, sysctls, DNS, ...), within the ceilings a bench
//! has, and the keys only the operator may allow (capabilities, devices, the host's
//! namespaces, security options, runtimes), checked against `compose-allow`.

use super::fate::Switch;
use super::project::Runtime;
use super::raw;
use super::service::{duration, flag, key_values, labels, Cx};
use crate::engine::{ContainerExtras, Namespace};

/// The longest `stop_grace_period` a bench waits for (a teardown must not hang on a branch).
pub const MAX_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// The highest open-files limit a service may ask for.
pub const MAX_NOFILE: i64 = 1 << 20;

/// Ulimits a service may set, with the most each may be (`None`: bounded by the bench's
/// memory limit, which the caller applies).
const ULIMITS: &[(&str, Option<i64>)] = &[
    ("nofile", Some(MAX_NOFILE)),
    ("nproc", Some(65_536)),
    ("core", None),
    ("memlock", None),
    ("stack", None),
    ("msgqueue", None),
    ("sigpending", Some(65_536)),
    ("nice", Some(0)),
    ("rtprio", Some(0)),
];

/// Sysctl prefixes with a namespace of the container's own (Docker's list, `docker run
/// --sysctl`): others would change the host.
const NAMESPACED_SYSCTLS: &[&str] = &[
    "net.",
    "kernel.shmmax",
    "kernel.shmall",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "fs.mqueue.",
];

pub(super) fn convert(cx: &Cx, s: &raw::Service) -> Result<Runtime, String> {
    let b = |v: &Option<raw::Text>, key: &str| -> Result<Option<bool>, String> {
        cx.opt(v.clone(), key)?
            .map(|t| flag(&t, &cx.at(key)))
            .transpose()
    };
    let many = |v: &Option<raw::OneOrMany>, key: &str| {
        cx.list(
            &v.clone().map(raw::OneOrMany::into_vec).unwrap_or_default(),
            key,
        )
    };
    let (labels, dropped_labels) = labels(s.labels.clone(), cx.ip, &cx.at("labels"))?;
    let mut c = ContainerExtras {
        hostname: cx.opt(s.hostname.clone(), "hostname")?,
        domainname: cx.opt(s.domainname.clone(), "domainname")?,
        stop_signal: cx.opt(s.stop_signal.clone(), "stop_signal")?,
        stop_timeout: duration(cx, s.stop_grace_period.clone(), "stop_grace_period")?
            .map(|d| d.min(MAX_STOP_GRACE)),
        init: b(&s.init, "init")?,
        tty: b(&s.tty, "tty")?.unwrap_or(false),
        open_stdin: b(&s.stdin_open, "stdin_open")?.unwrap_or(false),
        read_only: b(&s.read_only, "read_only")?.unwrap_or(false),
        shm_size: cx
            .opt(s.shm_size.clone(), "shm_size")?
            .map(|m| {
                crate::settings::parse_memory(&m).map_err(|e| format!("{}: {e}", cx.at("shm_size")))
            })
            .transpose()?,
        ulimits: ulimits(cx, s.ulimits.as_ref())?,
        sysctls: sysctls(cx, s.sysctls.clone())?.into_iter().collect(),
        platform: cx.opt(s.platform.clone(), "platform")?,
        group_add: cx.list(&s.group_add, "group_add")?,
        extra_hosts: extra_hosts(cx, s.extra_hosts.clone())?,
        dns: many(&s.dns, "dns")?,
        dns_options: cx.list(&s.dns_opt, "dns_opt")?,
        dns_search: many(&s.dns_search, "dns_search")?,
        cap_drop: cx.list(&s.cap_drop, "cap_drop")?,
        ..ContainerExtras::default()
    };
    namespaces(cx, s, &mut c)?;
    operator_only(cx, s, &mut c)?;
    Ok(Runtime {
        labels,
        dropped_labels,
        cap_add: capabilities(cx, &s.cap_add)?,
        container: c,
    })
}

/// The capabilities the service adds: those a bench has anyway, the operator's `--cap-add`,
/// and others only with `compose-allow = cap-add`.
fn capabilities(cx: &Cx, caps: &[raw::Text]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for c in cx.list(caps, "cap_add")? {
        let c = c.trim_start_matches("CAP_").to_uppercase();
        let has = crate::engine::BENCH_CAPABILITIES.contains(&c.as_str())
            || cx.inputs.cap_add.contains(&c);
        if !has {
            cx.guard(Switch::CapAdd, "cap_add", &c)?;
        }
        out.push(c);
    }
    Ok(out)
}

fn ulimits(
    cx: &Cx,
    u: Option<&std::collections::BTreeMap<String, raw::Ulimit>>,
) -> Result<Vec<(String, i64, i64)>, String> {
    let mut out = Vec::new();
    for (name, v) in u.into_iter().flatten() {
        let key = format!("ulimits.{name}");
        let num = |t: &raw::Text| -> Result<i64, String> {
            let t = cx.text(t, &key)?;
            t.parse::<i64>()
                .ok()
                .filter(|n| *n >= -1)
                .ok_or_else(|| format!("{}: `{t}` is not a limit", cx.at(&key)))
        };
        let (soft, hard) = match v {
            raw::Ulimit::One(n) => (num(n)?, num(n)?),
            raw::Ulimit::Both { soft, hard } => (num(soft)?, num(hard)?),
        };
        let Some((_, ceiling)) = ULIMITS.iter().find(|(n, _)| n == name) else {
            return Err(format!(
                "{}: `{name}` is not a limit a bench may set ({})",
                cx.at("ulimits"),
                ULIMITS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if let Some(max) = ceiling {
            if hard > *max || soft > *max || hard < 0 {
                return Err(format!(
                    "{}: {soft}/{hard} is over the {max} a bench may have",
                    cx.at(&key)
                ));
            }
        }
        out.push((name.clone(), soft, hard));
    }
    Ok(out)
}

fn sysctls(
    cx: &Cx,
    s: Option<raw::StringOrMap>,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let map = key_values(s, cx.ip, &cx.at("sysctls"))?;
    for k in map.keys() {
        if !NAMESPACED_SYSCTLS.iter().any(|p| k.starts_with(p)) {
            return Err(format!(
                "{}: `{k}` is not namespaced: setting it would change the host",
                cx.at("sysctls")
            ));
        }
    }
    Ok(map)
}

/// `extra_hosts` as `host:address` (Compose takes `host=address`, `host:address` and a map).
fn extra_hosts(cx: &Cx, h: Option<raw::StringOrMap>) -> Result<Vec<String>, String> {
    Ok(match h {
        None => Vec::new(),
        Some(raw::StringOrMap::Map(m)) => m
            .into_iter()
            .map(|(k, v)| {
                Ok(format!(
                    "{k}:{}",
                    cx.text(&v.unwrap_or_default(), "extra_hosts")?
                ))
            })
            .collect::<Result<_, String>>()?,
        Some(raw::StringOrMap::List(v)) => cx
            .list(&v, "extra_hosts")?
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((h, a)) => format!("{h}:{a}"),
                None => e,
            })
            .collect(),
    })
}

/// A namespace key: `host` (operator only), `service:<name>`, or one of the engine's `words`.
fn share(
    cx: &Cx,
    v: &Option<raw::Text>,
    key: &str,
    words: &[&str],
) -> Result<Option<Namespace>, String> {
    let Some(v) = cx.opt(v.clone(), key)? else {
        return Ok(None);
    };
    if v == "host" {
        cx.guard(Switch::HostNamespaces, key, "host")?;
        return Ok(Some(Namespace::Host));
    }
    if let Some(s) = v.strip_prefix("service:") {
        return Ok(Some(Namespace::Container(s.to_string())));
    }
    if words.contains(&v.as_str()) {
        return Ok(Some(Namespace::Word(v)));
    }
    Err(format!(
        "{}: `{v}` is not {}`service:<name>`{} (a container outside the bench is refused)",
        cx.at(key),
        words.iter().map(|w| format!("`{w}`, ")).collect::<String>(),
        if cx.inputs.allow.contains(&Switch::HostNamespaces) {
            " or `host`"
        } else {
            ""
        }
    ))
}

fn namespaces(cx: &Cx, s: &raw::Service, run: &mut ContainerExtras) -> Result<(), String> {
    run.network_mode = share(
        cx,
        &s.network_mode,
        "network_mode",
        &["none", "bridge", "default"],
    )?;
    if matches!(&run.network_mode, Some(Namespace::Word(w)) if w != "none") {
        // the bench's own network stands for the default bridge
        run.network_mode = None;
    }
    run.pid = share(cx, &s.pid, "pid", &[])?;
    run.ipc = share(cx, &s.ipc, "ipc", &["private", "shareable", "none"])?;
    for (v, key, flag) in [
        (&s.uts, "uts", &mut run.uts_host),
        (&s.userns_mode, "userns_mode", &mut run.userns_host),
        (&s.cgroup, "cgroup", &mut run.cgroup_host),
    ] {
        match cx.opt(v.clone(), key)?.as_deref() {
            None | Some("private") | Some("") => {}
            Some("host") => {
                cx.guard(Switch::HostNamespaces, key, "host")?;
                *flag = true;
            }
            Some(other) => {
                return Err(format!(
                    "{}: `{other}` is not `private` or `host`",
                    cx.at(key)
                ))
            }
        }
    }
    for v in cx.list(&s.volumes_from, "volumes_from")? {
        let v = v.split(':').next().unwrap_or_default().to_string();
        if v == "container" {
            return Err(format!(
                "{}: a container outside the bench is refused",
                cx.at("volumes_from")
            ));
        }
        run.volumes_from.push(v);
    }
    Ok(())
}

/// `privileged`, `devices`, `security_opt`, `runtime`: refused unless the operator allows them
/// (the audit has refused them already; this carries what was allowed).
fn operator_only(cx: &Cx, s: &raw::Service, run: &mut ContainerExtras) -> Result<(), String> {
    if let Some(p) = cx.opt(s.privileged.clone(), "privileged")? {
        run.privileged = flag(&p, &cx.at("privileged"))?;
        if run.privileged {
            cx.guard(Switch::Privileged, "privileged", "true")?;
        }
    }
    for d in &s.devices {
        let d = match d {
            raw::Device::Short(t) => cx.text(t, "devices")?,
            raw::Device::Long(m) => {
                let get = |k: &str| m.get(k).cloned().flatten().map(|t| t.0).unwrap_or_default();
                format!("{}:{}", get("source"), get("target"))
            }
        };
        cx.guard(Switch::Devices, "devices", &d)?;
        run.devices.push(d);
    }
    run.security_opt = cx.list(&s.security_opt, "security_opt")?;
    if let Some(o) = run.security_opt.first() {
        cx.guard(Switch::SecurityOpt, "security_opt", o)?;
    }
    run.runtime = cx.opt(s.runtime.clone(), "runtime")?;
    if let Some(r) = &run.runtime {
        cx.guard(Switch::Runtime, "runtime", r)?;
    }
    Ok(())
}
