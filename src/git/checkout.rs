//! Checkouts: each deploy's working tree lives in `<cache>/checkouts/`, beside the clone
//! cache, and is locked (a `flock` on its directory) by the process that uses it. The kernel
//! drops the lock when that process dies, however it dies, so the next deploy and `gc` remove
//! exactly the checkouts nobody holds.
//!
//! Creating a checkout and sweeping are kept apart by `checkouts/.lock`: creators hold it
//! shared for the moment between making the directory and locking it, a sweep holds it
//! exclusively, so a sweep never sees a fresh directory before its owner has locked it.

use super::FileLock;
use std::path::{Path, PathBuf};

const DIR: &str = "checkouts";
const GATE: &str = ".lock";

/// A deploy's checkout, removed when dropped (and swept when its process was killed).
pub struct Checkout {
    dir: tempfile::TempDir,
    // dropped after `dir`: the directory is removed while still locked
    _held: FileLock,
}

impl Checkout {
    /// A fresh, locked directory under `<cache>/checkouts/`, named after `issue`.
    pub fn create(cache: &Path, issue: &str) -> std::io::Result<Checkout> {
        let root = cache.join(DIR);
        std::fs::create_dir_all(&root)?;
        let _creating = FileLock::shared(&root.join(GATE))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", crate::naming::slug(issue, 40)))
            .tempdir_in(&root)?;
        let held = FileLock::try_directory(dir.path())?.ok_or_else(|| {
            std::io::Error::other(format!("{} is locked already", dir.path().display()))
        })?;
        Ok(Checkout { dir, _held: held })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes (with `dry_run`, only names) the checkouts under `cache` that no live process
/// holds: those of deploys that were killed.
pub fn sweep(cache: &Path, dry_run: bool) -> std::io::Result<Vec<PathBuf>> {
    let root = cache.join(DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let _sweeping = FileLock::exclusive(&root.join(GATE))?;
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(&root)?.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // held: a live deploy's; unreadable: not ours to judge
        let Ok(Some(unused)) = FileLock::try_directory(&path) else {
            continue;
        };
        if !dry_run {
            std::fs::remove_dir_all(&path)?;
        }
        drop(unused);
        removed.push(path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_checkout_stays_and_an_abandoned_one_goes() {
        let cache = tempfile::tempdir().unwrap();
        let live = Checkout::create(cache.path(), "PROJ-1").unwrap();
        std::fs::write(live.path().join("file"), "x").unwrap();
        // a killed deploy's checkout: its directory without a holder
        let dead = cache.path().join(DIR).join("PROJ-2-abandoned");
        std::fs::create_dir_all(dead.join("src")).unwrap();

        assert_eq!(sweep(cache.path(), true).unwrap(), vec![dead.clone()]);
        assert!(dead.exists(), "a dry run removes nothing");
        assert_eq!(sweep(cache.path(), false).unwrap(), vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(
            live.path().join("file").exists(),
            "the live checkout is kept"
        );

        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists(), "a finished deploy removes its own");
        assert!(sweep(cache.path(), false).unwrap().is_empty());
    }
}
