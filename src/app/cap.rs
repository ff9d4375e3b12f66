//! The cap on running benches (`--max-running`, `--max-memory-total`): a deploy that starts a
//! bench, or a wake, first makes room by putting the least recently used unpinned bench to
//! sleep; when only pinned benches are left it fails (exit 2) naming the cap and them.
//! Counting and starting happen under one engine-wide lock (a marker, like an issue's), so
//! concurrent deploys never overshoot the cap.

use crate::app::inspect::{benches, service_containers};
use crate::app::lock::{IssueLock, LockOptions};
use crate::engine::{labels, ContainerInfo, Engine};
use crate::naming::container_name;
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use std::collections::HashMap;
use std::time::Duration;

/// The cap (none of its parts set: no cap).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cap {
    pub max_running: Option<usize>,
    /// Bytes the running benches may reserve together (their memory limits).
    pub max_memory: Option<i64>,
    /// When each issue's bench was last used (serve's idle clock); without an entry, its last
    /// deploy counts.
    pub last_used: HashMap<String, u64>,
}

/// The name the cap's lock is kept under (no issue's key has parentheses).
const CAP_LOCK: &str = "(cap)";

/// One running bench, as the cap counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub issue: String,
    /// What it reserves: its memory limit, and its running services'.
    pub memory: i64,
    /// When it was last used (unix seconds).
    pub last: u64,
}

/// What a bench (with the `services` of its issue, those running when `running_only`)
/// reserves while it runs.
pub fn reserved(bench: &ContainerInfo, services: &[ContainerInfo], running_only: bool) -> i64 {
    let own: i64 = bench
        .labels
        .get(labels::MEMORY)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let issue = bench.labels.get(labels::ISSUE);
    let theirs: i64 = services
        .iter()
        .filter(|s| (s.running || !running_only) && s.labels.get(labels::ISSUE) == issue)
        .filter_map(|s| {
            let l = s.labels.get(crate::app::deploy::stack_plan::LIMITS)?;
            crate::app::deploy::stack_plan::parse_limits(l).map(|l| l.memory_bytes)
        })
        .sum();
    own + theirs
}

/// Every running bench on the engine (its bench container by its final name).
pub async fn running(engine: &Engine, last_used: &HashMap<String, u64>) -> Result<Vec<Running>> {
    let all = benches(engine, None).await?;
    let services = service_containers(engine, None).await?;
    Ok(all
        .iter()
        .filter(|b| b.running)
        .filter_map(|b| {
            let issue = b.labels.get(labels::ISSUE)?;
            (b.name == container_name(issue)).then(|| {
                let deployed = b
                    .labels
                    .get(labels::DEPLOYED_AT)
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                Running {
                    issue: issue.clone(),
                    memory: reserved(b, &services, true),
                    last: last_used.get(issue).copied().unwrap_or(0).max(deployed),
                }
            })
        })
        .collect())
}

impl Cap {
    pub fn is_set(&self) -> bool {
        self.max_running.is_some() || self.max_memory.is_some()
    }

    /// What is over the cap if one more bench reserving `need` starts beside `others`.
    fn exceeded(&self, others: &[Running], need: i64) -> Option<String> {
        if let Some(max) = self.max_running.filter(|m| others.len() + 1 > *m) {
            return Some(format!(
                "the cap of {max} running bench(es) (--max-running; {} run)",
                others.len()
            ));
        }
        let reserved: i64 = others.iter().map(|r| r.memory).sum();
        match self.max_memory {
            Some(max) if reserved + need > max => Some(format!(
                "the cap of {} MiB of memory (--max-memory-total; {} MiB reserved, {} MiB more \
                 needed)",
                max >> 20,
                reserved >> 20,
                need >> 20
            )),
            _ => None,
        }
    }
}

/// The room made for one more bench: the cap's lock, held until the bench has started.
pub struct Room(Option<IssueLock>);

impl Room {
    /// No room to hold: no cap, or a bench that replaces a running one.
    pub fn none() -> Room {
        Room(None)
    }

    /// Lets the next deploy or wake count (the new bench now runs, or failed to).
    pub async fn release(self, engine: &Engine, reporter: &SharedReporter) {
        if let Some(l) = self.0 {
            l.release_or_warn(engine, reporter).await;
        }
    }
}

/// Makes room for `issue`'s bench reserving `need` bytes: while the cap would be exceeded, the
/// least recently used unpinned bench of another issue (not being deployed) is put to sleep.
/// Returns the cap's lock, to be released once the bench has started.
///
/// `by` names the holder (a deploy's id): [`release_if_held_by`] frees the lock after an
/// interrupted deploy.
pub async fn make_room(
    engine: &Engine,
    cap: &Cap,
    issue: &str,
    need: i64,
    by: &str,
    lock: LockOptions,
    reporter: &SharedReporter,
) -> Result<Room> {
    if !cap.is_set() {
        return Ok(Room(None));
    }
    let options = LockOptions {
        timeout: lock.timeout.max(Duration::from_secs(60)),
        ..lock
    };
    let purpose = format!("the cap, for {issue} ({by})");
    let held = IssueLock::acquire(engine, CAP_LOCK, &purpose, None, options, reporter).await?;
    let made = async {
        loop {
            let others: Vec<Running> = running(engine, &cap.last_used)
                .await?
                .into_iter()
                .filter(|r| r.issue != issue)
                .collect();
            let Some(over) = cap.exceeded(&others, need) else {
                return Ok(());
            };
            let now = crate::clock::now_unix();
            let pins = crate::app::pin::pins(engine).await?;
            let pinned = |i: &str| crate::app::pin::active(&pins, i, now).is_some();
            let mut candidates: Vec<&Running> =
                others.iter().filter(|r| !pinned(&r.issue)).collect();
            candidates.sort_by_key(|r| (r.last, r.issue.clone()));
            let mut slept = None;
            for c in candidates {
                // a bench being deployed (its lock held) is not idle: the next one
                let instant = LockOptions {
                    timeout: Duration::ZERO,
                    ..lock
                };
                let Ok(l) =
                    IssueLock::acquire(engine, &c.issue, "sleep (cap)", None, instant, reporter)
                        .await
                else {
                    continue;
                };
                let r = crate::app::sleep::sleep_held(engine, &c.issue, "cap", reporter).await;
                l.release_or_warn(engine, reporter).await;
                if r.is_ok() {
                    slept = Some(c.issue.clone());
                    break;
                }
            }
            match slept {
                Some(s) => reporter.report(Event::Info(format!(
                    "{over}: put {s}, the least recently used, to sleep to make room for {issue}"
                ))),
                None => {
                    let mut held_by: Vec<&str> = others
                        .iter()
                        .map(|r| r.issue.as_str())
                        .filter(|i| pinned(i))
                        .collect();
                    held_by.sort();
                    return Err(Error::usage(format!(
                        "{issue} cannot start: {over} is reached and no bench can be put to \
                         sleep: {} (pinned: {}); unpin one (`benchctl unpin KEY`), put one to \
                         sleep or tear one down, or raise the cap",
                        if held_by.len() == others.len() {
                            "every running bench is pinned"
                        } else {
                            "the others are pinned or being deployed"
                        },
                        if held_by.is_empty() {
                            "none".to_string()
                        } else {
                            held_by.join(", ")
                        }
                    )));
                }
            }
        }
    }
    .await;
    match made {
        Ok(()) => Ok(Room(Some(held))),
        Err(e) => {
            held.release_or_warn(engine, reporter).await;
            Err(e)
        }
    }
}

/// Frees the cap's lock when the holder `by` (an interrupted deploy) still holds it.
pub async fn release_if_held_by(engine: &Engine, by: &str) -> bool {
    let held = crate::app::lock::all_locks(engine)
        .await
        .unwrap_or_default();
    for h in held {
        if h.issue == CAP_LOCK && h.purpose.ends_with(&format!("({by})")) {
            return engine.markers.remove(&h.marker).await.is_ok();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(issue: &str, mib: i64) -> Running {
        Running {
            issue: issue.into(),
            memory: mib << 20,
            last: 0,
        }
    }

    #[test]
    fn the_cap_counts_benches_and_their_memory() {
        let cap = Cap {
            max_running: Some(2),
            ..Default::default()
        };
        assert!(cap.exceeded(&[r("A-1", 64)], 64).is_none());
        let over = cap.exceeded(&[r("A-1", 64), r("A-2", 64)], 64).unwrap();
        assert!(
            over.contains("--max-running") && over.contains("2 run"),
            "{over}"
        );
        let cap = Cap {
            max_memory: Some(256 << 20),
            ..Default::default()
        };
        assert!(cap.exceeded(&[r("A-1", 128)], 128 << 20).is_none());
        let over = cap
            .exceeded(&[r("A-1", 128), r("A-2", 64)], 128 << 20)
            .unwrap();
        assert!(
            over.contains("256 MiB") && over.contains("192 MiB reserved"),
            "{over}"
        );
        assert!(!Cap::default().is_set());
    }
}
