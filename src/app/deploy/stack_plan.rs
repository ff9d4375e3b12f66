//! A multi-service bench's decisions, as pure functions of its Compose model: the order its
//! services start in, the names of its network, volumes and containers, each service's
//! container (limits capped by the operator's), and the hash that says whether a running
//! service can stay as it is.

use crate::compose::{Cmd, Project, Service};
use crate::engine::{labels, HealthSpec, Limits, ServiceMount, ServiceSpec};
use crate::naming::slug;
use std::collections::{BTreeMap, HashMap};

/// The label naming a container's Compose service.
pub const SERVICE: &str = "benchctl.service";
/// The role of a multi-service bench's other containers (the bench is the web service's).
pub const SERVICE_ROLE: &str = "service";
/// Which of its service's containers one is (`1` to `deploy.replicas`).
pub const REPLICA: &str = "benchctl.replica";
/// The hash of a service container's configuration (a redeploy keeps it when unchanged).
pub const SERVICE_HASH: &str = "benchctl.service-hash";

/// The label of a service's limits as applied (`<memory bytes> <nano CPUs> <pids>`): what
/// `status` totals.
pub const LIMITS: &str = "benchctl.limits";

/// The [`LIMITS`] label's value.
pub fn limits_label(l: &Limits) -> String {
    format!("{} {} {}", l.memory_bytes, l.nano_cpus, l.pids)
}

/// The limits a [`LIMITS`] label says; `None` when it is absent or not three numbers.
pub fn parse_limits(v: &str) -> Option<Limits> {
    let n: Vec<i64> = v
        .split(' ')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match n[..] {
        [memory_bytes, nano_cpus, pids] => Some(Limits {
            memory_bytes,
            nano_cpus,
            pids,
        }),
        _ => None,
    }
}

/// The services in an order that starts each after what it depends on; a cycle is an error.
pub fn order(p: &Project) -> Result<Vec<String>, String> {
    let mut done: Vec<String> = Vec::new();
    let mut left: Vec<&String> = p.services.keys().collect();
    while !left.is_empty() {
        let ready: Vec<&String> = left
            .iter()
            .copied()
            .filter(|n| p.services[*n].depends_on.keys().all(|d| done.contains(d)))
            .collect();
        if ready.is_empty() {
            return Err(format!(
                "the services {} depend on each other in a cycle",
                left.iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for n in ready {
            done.push(n.clone());
            left.retain(|l| *l != n);
        }
    }
    Ok(done)
}

/// The bench's network (the file's `default`).
pub fn network(issue: &str) -> String {
    format!("benchctl-{}", slug(issue, 60))
}

/// The engine's network of the bench's network `name` (the file's).
pub fn network_named(issue: &str, name: &str) -> String {
    if name == crate::compose::project::DEFAULT_NETWORK {
        return network(issue);
    }
    format!("benchctl-{}-net-{}", slug(issue, 60), slug(name, 60))
}

pub use crate::engine::labels::INTERNAL;

/// The engine's volume of the bench's volume `name`.
pub fn volume(issue: &str, name: &str) -> String {
    format!("benchctl-{}-{}", slug(issue, 60), slug(name, 60))
}

/// The container of a service other than the bench's.
pub fn container(issue: &str, service: &str) -> String {
    format!("benchctl-{}-svc-{}", slug(issue, 60), slug(service, 60))
}

/// The container of replica `i` of a service other than the bench's: the first has the
/// service's container name, the others `_<i>` after it (a slug has no `_`, so no service's
/// name meets another's replica).
pub fn replica(issue: &str, service: &str, i: u32) -> String {
    match i {
        0 | 1 => container(issue, service),
        i => format!("{}_{i}", container(issue, service)),
    }
}

/// The image of a service built from the branch, named by what it is built from (the digest
/// of its context): a commit that leaves the context as it was finds the image there.
pub fn image_tag(issue: &str, service: &str, context_digest: &str, build_hash: &str) -> String {
    format!(
        "{}-svc-{}:{}-{build_hash}",
        crate::naming::image_repo(issue),
        slug(service, 60),
        &context_digest[..context_digest.len().min(12)]
    )
}

/// A command as the engine takes it: a string is split as Compose splits it (shell words,
/// no shell).
pub fn argv(c: &Cmd) -> Result<Vec<String>, String> {
    match c {
        Cmd::Exec(v) => Ok(v.clone()),
        Cmd::Shell(s) => shlex::split(s).ok_or_else(|| format!("`{s}` has unbalanced quotes")),
    }
}

/// The health check of a service: Compose's `["CMD", ...]`, `["CMD-SHELL", "..."]`, or a
/// string (run by the image's shell).
fn health(s: &Service) -> Option<HealthSpec> {
    let h = s.healthcheck.as_ref()?;
    let test = match h.test.as_ref()? {
        Cmd::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        Cmd::Exec(v) => v.clone(),
    };
    Some(HealthSpec {
        test,
        interval: h.interval,
        timeout: h.timeout,
        retries: h.retries,
        start_period: h.start_period,
    })
}

/// The service's limits: its own from the file, each capped by the operator's (`cap`), which
/// also stand for what the file leaves out.
pub fn limits(s: &Service, cap: &Limits) -> Limits {
    Limits {
        memory_bytes: s
            .limits
            .memory
            .map_or(cap.memory_bytes, |m| m.min(cap.memory_bytes)),
        nano_cpus: s
            .limits
            .cpus
            .map_or(cap.nano_cpus, |c| ((c * 1e9) as i64).min(cap.nano_cpus)),
        pids: s.limits.pids.map_or(cap.pids, |p| p.min(cap.pids)),
    }
}

/// What a service's container is besides its name and labels.
pub struct Shape<'a> {
    pub issue: &'a str,
    pub service: &'a str,
    /// The reference the container runs.
    pub image: String,
    /// The image's id: what the hash compares, so a new tag of the same image keeps the
    /// container.
    pub image_id: String,
    pub cap: &'a Limits,
    pub cap_add: &'a [String],
    /// A port published on this address (the bench's web service).
    pub publish: Option<(u16, String)>,
    /// The files the service copies in, read from the checkout by the deploy's preparation.
    pub copies: Option<&'a super::stack_extras::Copied>,
    /// The web service (its container has the bench's name).
    pub web: &'a str,
}

/// The engine's container of service `name` of the bench of `issue`.
pub fn container_of(issue: &str, web: &str, name: &str) -> String {
    if name == web {
        crate::naming::container_name(issue)
    } else {
        container(issue, name)
    }
}

/// The container of service `s`, labelled with `labels` and its configuration's hash.
pub fn service_spec(
    s: &Service,
    shape: Shape,
    name: String,
    mut labels: HashMap<String, String>,
) -> Result<ServiceSpec, String> {
    let env: Vec<String> = s
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    let mut networks = s.networks.iter().map(|(n, aliases)| {
        let mut a = vec![shape.service.to_string()];
        a.extend(aliases.iter().filter(|x| *x != shape.service).cloned());
        (network_named(shape.issue, n), a)
    });
    let (network, aliases) = networks
        .next()
        .unwrap_or_else(|| (network(shape.issue), vec![shape.service.to_string()]));
    let mut extras = super::stack_extras::extras(s, &shape);
    extras.networks = networks.collect();
    let none = super::stack_extras::Copied::default();
    let copied = match shape.copies {
        Some(c) => c,
        None if s.copies.is_empty() => &none,
        None => return Err("its files are copied from a checkout, and there is none".into()),
    };
    let spec = ServiceSpec {
        name,
        image: shape.image,
        labels: HashMap::new(),
        env,
        entrypoint: s.entrypoint.as_ref().map(argv).transpose()?,
        cmd: s.command.as_ref().map(argv).transpose()?,
        network,
        aliases,
        mounts: s
            .volumes
            .iter()
            .map(|m| ServiceMount {
                volume: m.volume.as_ref().map(|v| volume(shape.issue, v)),
                target: m.target.clone(),
                read_only: m.read_only,
            })
            .collect(),
        tmpfs: s.tmpfs.clone(),
        working_dir: s.working_dir.clone(),
        user: s.user.clone(),
        restart: s.restart.clone(),
        limits: limits(s, shape.cap),
        health: health(s),
        publish: shape.publish,
        cap_add: shape
            .cap_add
            .iter()
            .chain(&s.run.cap_add)
            .cloned()
            .collect(),
        replaces: None,
        probe: None,
        proxy_network: None,
        extras,
        copies: copied.specs.clone(),
    };
    labels.extend(s.run.labels.clone());
    labels.insert(SERVICE.to_string(), shape.service.to_string());
    labels.insert(
        SERVICE_HASH.to_string(),
        hash(&spec, &shape.image_id, &copied.digests),
    );
    labels.insert(LIMITS.to_string(), limits_label(&spec.limits));
    Ok(ServiceSpec { labels, ..spec })
}

/// The hash of everything that makes a service's container: its image by id (not by tag), its
/// copied files by content.
pub fn hash(s: &ServiceSpec, image_id: &str, copied: &[String]) -> String {
    use sha2::Digest;
    let env: BTreeMap<&String, ()> = s.env.iter().map(|e| (e, ())).collect();
    let copies: Vec<(&String, &Option<u32>, u32, u32)> = s
        .copies
        .iter()
        .map(|c| (&c.target, &c.mode, c.uid, c.gid))
        .collect();
    let text = format!(
        "s2|{image_id}|{env:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{copies:?}|{copied:?}",
        s.entrypoint,
        s.cmd,
        s.network,
        s.aliases,
        s.mounts,
        s.tmpfs,
        s.working_dir,
        s.user,
        s.restart,
        s.limits,
        s.health,
        s.publish,
        s.cap_add,
        s.extras,
    );
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// The labels of a multi-service bench's network and volumes, and of its other services.
pub fn stack_labels(
    issue: &str,
    repo: &str,
    deploy_id: &str,
    backend: &str,
) -> HashMap<String, String> {
    let mut l = labels::issue_labels(issue);
    l.insert(labels::BACKEND.to_string(), backend.to_string());
    l.insert(labels::REPO.to_string(), labels::value(repo));
    l.insert(labels::DEPLOY_ID.to_string(), deploy_id.to_string());
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::Condition;

    fn svc(deps: &[&str]) -> Service {
        Service {
            image: Some("x".into()),
            depends_on: deps
                .iter()
                .map(|d| (d.to_string(), Condition::Started))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn services_start_after_what_they_depend_on() {
        let mut p = Project::default();
        p.services.insert("web".into(), svc(&["db", "migrate"]));
        p.services.insert("migrate".into(), svc(&["db"]));
        p.services.insert("db".into(), svc(&[]));
        assert_eq!(order(&p).unwrap(), ["db", "migrate", "web"]);
        p.services.insert("db".into(), svc(&["web"]));
        let e = order(&p).unwrap_err();
        assert!(e.contains("cycle") && e.contains("`db`"), "{e}");
    }

    #[test]
    fn a_services_limits_are_capped_by_the_operators() {
        let cap = Limits {
            memory_bytes: 512 << 20,
            nano_cpus: 1_000_000_000,
            pids: 256,
        };
        let mut s = svc(&[]);
        assert_eq!(limits(&s, &cap), cap);
        s.limits.memory = Some(64 << 20);
        s.limits.cpus = Some(4.0);
        s.limits.pids = Some(10_000);
        assert_eq!(
            limits(&s, &cap),
            Limits {
                memory_bytes: 64 << 20,
                nano_cpus: 1_000_000_000,
                pids: 256
            }
        );
    }

    #[test]
    fn commands_split_as_compose_splits_them() {
        assert_eq!(
            argv(&Cmd::Shell("sh -c 'echo a b' \"c d\"".into())).unwrap(),
            ["sh", "-c", "echo a b", "c d"]
        );
        assert!(argv(&Cmd::Shell("echo 'x".into())).is_err());
    }

    #[test]
    fn the_hash_changes_with_the_container_and_not_with_the_labels() {
        let cap = Limits {
            memory_bytes: 1 << 30,
            nano_cpus: 1_000_000_000,
            pids: 10,
        };
        let shape = |image: &str, id: &str| Shape {
            issue: "P-1",
            service: "db",
            image: image.into(),
            image_id: id.into(),
            cap: &cap,
            cap_add: &[],
            publish: None,
            copies: None,
            web: "web",
        };
        let s = svc(&[]);
        let a = service_spec(&s, shape("t:1", "sha256:1"), "n".into(), HashMap::new()).unwrap();
        let b = service_spec(
            &s,
            shape("t:1", "sha256:1"),
            "m".into(),
            HashMap::from([("x".into(), "y".into())]),
        )
        .unwrap();
        let c = service_spec(&s, shape("t:1", "sha256:2"), "n".into(), HashMap::new()).unwrap();
        // a new tag of the same image (a commit that left the context alone) keeps it
        let d = service_spec(&s, shape("t:2", "sha256:1"), "n".into(), HashMap::new()).unwrap();
        assert_eq!(a.labels[SERVICE_HASH], b.labels[SERVICE_HASH]);
        assert_ne!(a.labels[SERVICE_HASH], c.labels[SERVICE_HASH]);
        assert_eq!(a.labels[SERVICE_HASH], d.labels[SERVICE_HASH]);
        assert_eq!(a.labels[SERVICE], "db");
        assert_eq!(a.network, "benchctl-p-1");
    }

    #[test]
    fn a_limits_label_reads_back_and_anything_else_is_none() {
        let l = Limits {
            memory_bytes: 64 << 20,
            nano_cpus: 500_000_000,
            pids: 128,
        };
        assert_eq!(parse_limits(&limits_label(&l)), Some(l));
        for bad in ["", "1 2", "1 2 3 4", "a b c", "1  2 3"] {
            assert_eq!(parse_limits(bad), None, "{bad:?}");
        }
    }
}
