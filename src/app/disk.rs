//! The engine's disk and the benches: what each issue holds there (gc's report and
//! `benchctl disk`), the room left on the engine's data disk when benchctl runs beside the
//! engine, and the refusal to start a build below `--min-free-disk` (the storage drivers most
//! hosts run cannot bound a container's disk, so a high-water mark stands in).

use crate::engine::disk::IssueDisk;
use crate::engine::Engine;
use crate::{Error, Result};

/// The benches' part of the engine's disk.
#[derive(Debug, Clone, Default)]
pub struct DiskReport {
    /// Each issue's bytes, the largest first.
    pub benches: Vec<(String, IssueDisk)>,
    /// Free bytes on the engine's data disk (`None`: the engine is on another host).
    pub free: Option<u64>,
    pub root_dir: Option<String>,
}

impl DiskReport {
    pub fn total(&self) -> u64 {
        self.benches.iter().map(|(_, d)| d.total()).sum()
    }
}

/// What benches hold, and the room left when the engine is `local` (on this host).
pub async fn report(engine: &Engine, local: bool) -> Result<DiskReport> {
    let usage = engine.images.disk().await?;
    let mut benches: Vec<(String, IssueDisk)> = usage.by_issue.into_iter().collect();
    benches.sort_by_key(|(issue, d)| (std::cmp::Reverse(d.total()), issue.clone()));
    let free = match (&usage.root_dir, local) {
        (Some(dir), true) => free_bytes(dir),
        _ => None,
    };
    Ok(DiskReport {
        benches,
        free,
        root_dir: usage.root_dir,
    })
}

/// Free bytes (for an unprivileged writer) on the file system holding `path`.
pub fn free_bytes(path: &str) -> Option<u64> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: statvfs writes only the struct it is given; `c` is a valid C string
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Refuses to start a build of `issue` while the engine's data disk has less than `min` free
/// (only where that can be read: the engine on this host).
pub async fn ensure_room(engine: &Engine, local: bool, min: u64, issue: &str) -> Result<()> {
    if min == 0 || !local {
        return Ok(());
    }
    let Some(dir) = engine.images.disk().await?.root_dir else {
        return Ok(());
    };
    match free_bytes(&dir) {
        Some(free) if free < min => Err(Error::Engine(format!(
            "the engine's disk ({dir}) has {} free, less than --min-free-disk ({}): {issue}'s \
             build was not started. Free room (`benchctl gc`; `benchctl disk` shows what each \
             bench holds) or lower --min-free-disk (BENCHCTL_MIN_FREE_DISK)",
            human(free),
            human(min)
        ))),
        _ => Ok(()),
    }
}

/// `1.5 GiB`, `300 MiB`.
pub fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / GIB),
        b => format!("{} MiB", b >> 20),
    }
}
