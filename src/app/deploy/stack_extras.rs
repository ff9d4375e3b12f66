//! A Compose service's container beyond the common shape: the keys run as written as the
//! engine's [`ContainerExtras`] (namespaces shared with another service name that service's
//! container), and the files copied in (the branch's own, secrets, configs), read once from
//! the checkout with the digest of each, which the service's hash compares.

use super::content;
use super::stack_plan::{container_of, Shape};
use crate::compose::{Service, Source};
use crate::engine::{ContainerExtras, CopyContent, CopySpec, Namespace};

/// The engine's extras of service `s`: the file's, with the services it names made their
/// containers and what counts against the bench's memory capped by it.
pub fn extras(s: &Service, shape: &Shape) -> ContainerExtras {
    let container = |n: &String| container_of(shape.issue, shape.web, n);
    let ns = |v: &Option<Namespace>| match v {
        Some(Namespace::Container(n)) => Some(Namespace::Container(container(n))),
        other => other.clone(),
    };
    let memory = shape.cap.memory_bytes;
    let c = &s.run.container;
    ContainerExtras {
        network_mode: ns(&c.network_mode),
        pid: ns(&c.pid),
        ipc: ns(&c.ipc),
        volumes_from: c.volumes_from.iter().map(container).collect(),
        // shared memory and locked memory count against the bench's: never more than it
        shm_size: c.shm_size.map(|m| m.min(memory)),
        ulimits: c
            .ulimits
            .iter()
            .map(|(n, soft, hard)| {
                let capped = |v: i64| match n.as_str() {
                    "core" | "memlock" | "stack" | "msgqueue" => v.min(memory),
                    _ => v,
                };
                (n.clone(), capped(*soft), capped(*hard))
            })
            .collect(),
        memory_reservation: s.limits.memory_reservation.map(|m| m.min(memory)),
        ..c.clone()
    }
}

/// The files a service copies in, read once from the checkout: what the engine puts in, and
/// the digest of each (in the same order), which the service's hash compares.
#[derive(Debug, Clone, Default)]
pub struct Copied {
    pub specs: Vec<CopySpec>,
    pub digests: Vec<String>,
}

/// The files copied into service `s`'s container from the checkout `root`, and the digest of
/// each (in the same order).
pub fn copies(s: &Service, root: &std::path::Path) -> Result<Copied, String> {
    let mut out = Copied::default();
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
        out.specs.push(CopySpec {
            target: c.target.clone(),
            content,
            mode: c.mode,
            uid: c.uid.unwrap_or(0),
            gid: c.gid.unwrap_or(0),
        });
        out.digests.push(digest);
    }
    Ok(out)
}
