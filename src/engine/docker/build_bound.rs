//! The bound the engine's host puts on its BuildKit's steps. The engine's BuildKit ignores the
//! build API's memory and CPU limits: every `RUN` step runs in a cgroup under the engine's own
//! `buildkit` cgroup (`/docker/buildkit` with the cgroupfs driver), so the only bound a branch's
//! build has is the one the host sets there. benchctl reads it from the host's cgroup tree,
//! which it can see only when it runs on the engine's machine; `--builder auto` (the default)
//! builds with BuildKit only when that bound exists (the security model: a branch's build must
//! not take the host's memory).

use std::path::Path;

/// What the engine says about where its containers' cgroups live (`docker info`).
#[derive(Debug, Clone, Default)]
pub struct CgroupInfo {
    /// `cgroupfs` or `systemd`.
    pub driver: String,
    /// `1` or `2`.
    pub version: String,
    /// The host's memory (bytes): a bound at or above it bounds nothing.
    pub mem_total: i64,
}

/// Values at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page).
const UNLIMITED: i64 = 1 << 62;

/// The bound on the engine's BuildKit steps, read under `root` (`/sys/fs/cgroup`): a sentence
/// saying it (`memory 1.0 GiB, pids 512 (cgroup /docker/buildkit)`), or why there is none.
pub fn step_bound(info: &CgroupInfo, root: &Path) -> Result<String, String> {
    if info.driver != "cgroupfs" {
        return Err(format!(
            "benchctl cannot tell where the engine's BuildKit runs its steps with the `{}` \
             cgroup driver",
            info.driver
        ));
    }
    let (memory, pids, group) = match info.version.as_str() {
        "1" => {
            let dir = root.join("memory/docker/buildkit");
            // the effective limit of the group and its ancestors
            let stat = read(&dir.join("memory.stat"))?;
            let memory = stat
                .lines()
                .find_map(|l| l.strip_prefix("hierarchical_memory_limit "))
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(i64::MAX);
            let pids = read(&root.join("pids/docker/buildkit/pids.max")).ok();
            (memory, pids, dir)
        }
        "2" => {
            let dir = root.join("docker/buildkit");
            let mut memory = i64::MAX;
            // the effective limit: the smallest on the way up to the root
            let mut at = dir.as_path();
            while at.starts_with(root) && at != root {
                if let Ok(v) = read(&at.join("memory.max")) {
                    memory = memory.min(v.trim().parse::<i64>().unwrap_or(i64::MAX));
                }
                at = at.parent().unwrap_or(root);
            }
            read(&dir.join("memory.max"))?;
            let pids = read(&dir.join("pids.max")).ok();
            (memory, pids, dir)
        }
        other => return Err(format!("the engine reports cgroup version `{other}`")),
    };
    let group = group.display().to_string();
    let total = if info.mem_total > 0 {
        info.mem_total
    } else {
        UNLIMITED
    };
    if memory >= UNLIMITED.min(total) {
        return Err(format!(
            "the engine's BuildKit steps have no memory bound ({group} is not limited below \
             the host's memory)"
        ));
    }
    let pids = pids
        .map(|p| p.trim().to_string())
        .filter(|p| p != "max")
        .map(|p| format!(", pids {p}"))
        .unwrap_or_default();
    Ok(format!(
        "its steps are bounded by {group}: memory {}{pids}",
        gib(memory)
    ))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "benchctl cannot read the bound of the engine's BuildKit steps at {} ({e}): run it \
             on the engine's machine with the host's /sys/fs/cgroup",
            path.display()
        )
    })
}

fn gib(bytes: i64) -> String {
    match bytes >= 1 << 30 {
        true => format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
        false => format!("{} MiB", bytes >> 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(root: &Path, limit: i64, pids: &str) {
        let mem = root.join("memory/docker/buildkit");
        std::fs::create_dir_all(&mem).unwrap();
        std::fs::write(
            mem.join("memory.stat"),
            format!("cache 0\nhierarchical_memory_limit {limit}\nhierarchical_memsw_limit 0\n"),
        )
        .unwrap();
        let p = root.join("pids/docker/buildkit");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("pids.max"), format!("{pids}\n")).unwrap();
    }

    fn info(driver: &str, version: &str) -> CgroupInfo {
        CgroupInfo {
            driver: driver.into(),
            version: version.into(),
            mem_total: 8 << 30,
        }
    }

    #[test]
    fn a_v1_bound_below_the_hosts_memory_counts() {
        let dir = tempfile::tempdir().unwrap();
        v1(dir.path(), 1 << 30, "512");
        let said = step_bound(&info("cgroupfs", "1"), dir.path()).unwrap();
        assert!(said.ends_with("memory 1.0 GiB, pids 512"), "{said}");
        v1(dir.path(), 9_223_372_036_854_771_712, "max");
        let why = step_bound(&info("cgroupfs", "1"), dir.path()).unwrap_err();
        assert!(why.contains("no memory bound"), "{why}");
        // a bound above the host's memory bounds nothing
        v1(dir.path(), 16 << 30, "max");
        assert!(step_bound(&info("cgroupfs", "1"), dir.path()).is_err());
    }

    #[test]
    fn a_v2_bound_is_the_smallest_on_the_way_up() {
        let dir = tempfile::tempdir().unwrap();
        let bk = dir.path().join("docker/buildkit");
        std::fs::create_dir_all(&bk).unwrap();
        std::fs::write(bk.join("memory.max"), "max\n").unwrap();
        std::fs::write(bk.join("pids.max"), "max\n").unwrap();
        assert!(step_bound(&info("cgroupfs", "2"), dir.path()).is_err());
        std::fs::write(dir.path().join("docker/memory.max"), "536870912\n").unwrap();
        let said = step_bound(&info("cgroupfs", "2"), dir.path()).unwrap();
        assert!(said.ends_with("memory 512 MiB"), "{said}");
    }

    #[test]
    fn without_the_tree_or_with_systemd_there_is_no_bound() {
        let dir = tempfile::tempdir().unwrap();
        let why = step_bound(&info("cgroupfs", "1"), dir.path()).unwrap_err();
        assert!(why.contains("cannot read"), "{why}");
        let why = step_bound(&info("systemd", "2"), dir.path()).unwrap_err();
        assert!(why.contains("systemd"), "{why}");
    }
}
