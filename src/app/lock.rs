//! One deploy (or teardown) per issue at a time, across processes and across CI runners that
//! share one Docker engine.
//!
//! The lock is a never-started container named `benchctl-lock-<issue>`: the engine reserves
//! container names atomically, so creating it is a compare-and-set, and it lives where every
//! runner sharing the engine sees it. Its labels say who holds it and since when.
//!
//! A holder that was killed (SIGKILL included) blocks the issue for a bounded time:
//! - on the same machine and PID namespace (same kernel boot id), a waiter sees that the
//!   holder's process is gone (pid plus start time) and breaks the lock at once;
//! - elsewhere (another runner sharing the engine) the lock expires after its lease
//!   (`--lock-lease`, default 15 minutes).
//!
//! Before a deploy switches benches it checks that it still holds the lock (fencing): a holder
//! whose lock was broken stops without touching the running bench.

use crate::clock::{now_unix, utc};
use crate::engine::{labels, Engine, Marker};
use crate::naming::slug;
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const DEFAULT_LEASE: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

const HOLDER: &str = "benchctl.lock.holder";
const SINCE: &str = "benchctl.lock.since";
const LEASE_UNTIL: &str = "benchctl.lock.lease-until";
const HOST_ID: &str = "benchctl.lock.host-id";
const PID: &str = "benchctl.lock.pid";
const PID_START: &str = "benchctl.lock.pid-start";
const PURPOSE: &str = "benchctl.lock.purpose";

/// How long to wait for another deploy of the issue, and how long a lock of a holder on
/// another machine lasts.
#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    pub timeout: Duration,
    pub lease: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout: DEFAULT_TIMEOUT,
            lease: DEFAULT_LEASE,
        }
    }
}

pub fn lock_name(issue: &str) -> String {
    format!("benchctl-lock-{}", slug(issue, 60))
}

/// This kernel boot and PID namespace: pids are comparable only within it.
fn host_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}/{ns}", boot.trim())
}

/// Start time of a process (clock ticks since boot), to tell it from a later one with its pid.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name (field 2) may hold spaces: fields after it follow the last ')'
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Who holds a lock, as its labels say.
#[derive(Debug, Clone)]
pub struct Holder {
    pub issue: String,
    pub holder: String,
    pub purpose: String,
    /// The repository a deploy holding the lock deploys from (gc's `--scope`).
    pub repo: Option<String>,
    pub since: u64,
    pub lease_until: u64,
    pub host_id: String,
    pub pid: u32,
    pub pid_start: Option<u64>,
    /// The lock itself.
    pub marker: Marker,
}

impl Holder {
    fn from_marker(marker: Marker) -> Self {
        let l = &marker.labels;
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        Holder {
            issue: get(labels::ISSUE),
            holder: get(HOLDER),
            purpose: get(PURPOSE),
            repo: l.get(labels::REPO).cloned(),
            since: get(SINCE).parse().unwrap_or(0),
            lease_until: get(LEASE_UNTIL).parse().unwrap_or(0),
            host_id: get(HOST_ID),
            pid: get(PID).parse().unwrap_or(0),
            pid_start: get(PID_START).parse().ok(),
            marker,
        }
    }

    /// Why the lock may be broken, if it may.
    pub fn stale_because(&self) -> Option<String> {
        if self.host_id == host_id() && self.pid != 0 {
            let alive = process_start(self.pid).is_some_and(|s| Some(s) == self.pid_start);
            if !alive {
                return Some(format!("its holder ({}) is no longer running", self.holder));
            }
            return None;
        }
        (now_unix() > self.lease_until).then(|| {
            format!(
                "its lease ran out at {} (holder {})",
                utc(self.lease_until),
                self.holder
            )
        })
    }
}

/// A held lock; release it with [`IssueLock::release`] (a process that dies without releasing
/// leaves a lock that the rules above break).
pub struct IssueLock {
    pub issue: String,
    pub name: String,
    pub id: String,
}

impl IssueLock {
    /// Takes the issue's lock, waiting up to `opts.timeout` for the current holder. `repo`:
    /// the repository the holder works on, when it knows it.
    pub async fn acquire(
        engine: &Engine,
        issue: &str,
        purpose: &str,
        repo: Option<&str>,
        opts: LockOptions,
        reporter: &SharedReporter,
    ) -> Result<IssueLock> {
        let LockOptions { timeout, lease } = opts;
        let name = lock_name(issue);
        let started = Instant::now();
        let mut told = false;
        loop {
            let t = now_unix();
            let pid = std::process::id();
            let user = std::env::var("USER").unwrap_or_else(|_| "?".into());
            let mut l = HashMap::new();
            l.insert(labels::MANAGED.to_string(), "true".to_string());
            l.insert(labels::ROLE.to_string(), "lock".to_string());
            l.insert(labels::ISSUE.to_string(), issue.to_string());
            l.insert(
                HOLDER.to_string(),
                format!("{user}@{} pid {pid}", crate::env::machine_hostname()),
            );
            l.insert(PURPOSE.to_string(), purpose.to_string());
            if let Some(repo) = repo {
                l.insert(labels::REPO.to_string(), labels::value(repo));
            }
            l.insert(SINCE.to_string(), t.to_string());
            l.insert(LEASE_UNTIL.to_string(), (t + lease.as_secs()).to_string());
            l.insert(HOST_ID.to_string(), host_id());
            l.insert(PID.to_string(), pid.to_string());
            if let Some(s) = process_start(pid) {
                l.insert(PID_START.to_string(), s.to_string());
            }
            if let Some(id) = engine.markers.create(&name, &l).await? {
                return Ok(IssueLock {
                    issue: issue.to_string(),
                    name,
                    id,
                });
            }
            let Some(current) = engine.markers.get(&name).await? else {
                continue; // released meanwhile: try again at once
            };
            let holder = Holder::from_marker(current);
            if let Some(why) = holder.stale_because() {
                reporter.report(Event::Warn(format!("breaking the lock of {issue}: {why}")));
                engine.markers.remove(&holder.marker).await?;
                continue;
            }
            if started.elapsed() >= timeout {
                return Err(Error::Locked {
                    issue: issue.to_string(),
                    holder: holder.holder,
                    purpose: holder.purpose,
                    since: utc(holder.since),
                    waited: timeout.as_secs(),
                });
            }
            if !told {
                told = true;
                reporter.report(Event::Step(format!(
                    "waiting for {} ({} since {}) to finish with {issue}",
                    holder.holder,
                    holder.purpose,
                    utc(holder.since)
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether the lock is still this one (it was not broken by someone else).
    pub async fn still_held(&self, engine: &Engine) -> Result<bool> {
        Ok(engine
            .markers
            .get(&self.name)
            .await?
            .is_some_and(|m| m.id == self.id))
    }

    /// Gives the lock up (a lock someone broke meanwhile is theirs: left alone).
    pub async fn release(self, engine: &Engine) -> Result<()> {
        match engine.markers.get(&self.name).await? {
            Some(m) if m.id == self.id => engine.markers.remove(&m).await,
            _ => Ok(()),
        }
    }

    /// Releases the lock; a failure only warns (the lease or the next run breaks it).
    pub async fn release_or_warn(self, engine: &Engine, reporter: &SharedReporter) {
        let issue = self.issue.clone();
        if let Err(e) = self.release(engine).await {
            reporter.report(Event::Warn(format!(
                "could not release the lock of {issue}: {e}"
            )));
        }
    }
}

/// Removes the issue's lock if this process holds it (after an interruption).
pub async fn release_if_mine(engine: &Engine, issue: &str) -> bool {
    let Ok(Some(m)) = engine.markers.get(&lock_name(issue)).await else {
        return false;
    };
    let h = Holder::from_marker(m);
    if h.host_id == host_id() && h.pid == std::process::id() {
        return engine.markers.remove(&h.marker).await.is_ok();
    }
    false
}

/// Every lock (for gc), with its holder.
pub async fn all_locks(engine: &Engine) -> Result<Vec<Holder>> {
    Ok(engine
        .markers
        .list(&labels::role_filter("lock"))
        .await?
        .into_iter()
        .map(Holder::from_marker)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_dead_pids_are_stale() {
        let me = std::process::id();
        let h = Holder {
            marker: Marker {
                id: "x".into(),
                name: lock_name("X-1"),
                labels: HashMap::new(),
                kind: crate::engine::MarkerKind::Container,
            },
            issue: "X-1".into(),
            holder: "me".into(),
            purpose: "deploy".into(),
            repo: None,
            since: now_unix(),
            lease_until: now_unix() + 600,
            host_id: host_id(),
            pid: me,
            pid_start: process_start(me),
        };
        assert!(h.stale_because().is_none());
        let dead = Holder {
            pid_start: Some(1),
            ..h.clone()
        };
        assert!(dead.stale_because().is_some());
        let elsewhere_live = Holder {
            host_id: "other".into(),
            ..h.clone()
        };
        assert!(elsewhere_live.stale_because().is_none());
        let elsewhere_expired = Holder {
            host_id: "other".into(),
            lease_until: now_unix() - 1,
            ..h
        };
        assert!(elsewhere_expired.stale_because().is_some());
    }
}
