//! A Compose service's container beyond the common shape, as pure decisions over its model:
//! the keys run as written turned into the engine's [`ContainerExtras`] (namespaces shared
//! with another service name that service's container), and the files copied in (the branch's
//! own, secrets, configs) with the digest of each, which the service's hash compares.

use super::content;
use super::stack_plan::{container_of, Shape};
use crate::compose::project::Share;
use crate::compose::{Service, Source};
use crate::engine::{ContainerExtras, CopyContent, CopySpec, Namespace};

/// The engine's extras of service `s`.
pub fn extras(s: &Service, shape: &Shape) -> ContainerExtras {
    let r = &s.run;
    let ns = |v: &Option<Share>| {
        v.as_ref().map(|v| match v {
            Share::Host => Namespace::Host,
            Share::Service(n) => Namespace::Container(container_of(shape.issue, shape.web, n)),
            Share::Word(w) => Namespace::Word(w.clone()),
        })
    };
    ContainerExtras {
        hostname: r.hostname.clone(),
        domainname: r.domainname.clone(),
        stop_signal: r.stop_signal.clone(),
        stop_timeout: r.stop_grace_period,
        init: r.init,
        tty: r.tty,
        open_stdin: r.stdin_open,
        read_only: r.read_only,
        // shared memory counts against the bench's memory: never more than the limit
        shm_size: r.shm_size.map(|m| m.min(shape.cap.memory_bytes)),
        ulimits: r
            .ulimits
            .iter()
            .map(|(n, soft, hard)| {
                let capped = |v: i64| match n.as_str() {
                    "core" | "memlock" | "stack" | "msgqueue" => v.min(shape.cap.memory_bytes),
                    _ => v,
                };
                (n.clone(), capped(*soft), capped(*hard))
            })
            .collect(),
        sysctls: r
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        platform: r.platform.clone(),
        group_add: r.group_add.clone(),
        extra_hosts: r.extra_hosts.clone(),
        dns: r.dns.clone(),
        dns_options: r.dns_opt.clone(),
        dns_search: r.dns_search.clone(),
        cap_drop: r.cap_drop.clone(),
        network_mode: ns(&r.network_mode),
        pid: ns(&r.pid),
        ipc: ns(&r.ipc),
        uts_host: r.uts_host,
        userns_host: r.userns_host,
        cgroup_host: r.cgroup_host,
        volumes_from: r
            .volumes_from
            .iter()
            .map(|n| container_of(shape.issue, shape.web, n))
            .collect(),
        privileged: r.privileged,
        devices: r.devices.clone(),
        security_opt: r.security_opt.clone(),
        runtime: r.runtime.clone(),
        binds: r.binds.clone(),
        memory_reservation: s
            .limits
            .memory_reservation
            .map(|m| m.min(shape.cap.memory_bytes)),
        networks: Vec::new(),
    }
}

/// The files copied into service `s`'s container from the checkout `root`, and the digest of
/// each (in the same order).
pub fn copies(s: &Service, root: &std::path::Path) -> Result<(Vec<CopySpec>, Vec<String>), String> {
    let mut out = Vec::new();
    let mut digests = Vec::new();
    for c in &s.copies {
        let (content, digest) = match &c.from {
            Source::Branch(rel) => {
                let refused = |e: content::Refused| format!("`volumes`/`secrets`/`configs`: {e}");
                let path = content::resolve(root, rel).map_err(refused)?;
                (
                    CopyContent::Path(path),
                    content::digest(root, rel).map_err(refused)?,
                )
            }
            Source::Text(t) => {
                use sha2::Digest;
                let d = hex::encode(sha2::Sha256::digest(t.as_bytes()));
                (CopyContent::Bytes(t.clone().into_bytes()), d)
            }
        };
        // a read-only bind keeps the branch's modes (scripts stay runnable); secrets and
        // configs come with theirs
        out.push(CopySpec {
            target: c.target.clone(),
            content,
            mode: c.mode,
            uid: c.uid.unwrap_or(0),
            gid: c.gid.unwrap_or(0),
        });
        digests.push(digest);
    }
    Ok((out, digests))
}
