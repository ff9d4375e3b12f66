//! The persisted side of `benchctl serve`'s queue: each job is a JSON file
//! `queue/<seq>.json` under the state directory, written (and synced) before the sender gets
//! its 2xx and removed only when the job is finished; on start every file left is queued
//! again, so neither a restart nor a crash mid-job loses a delivery. Delivery ids and signed
//! bodies are kept as files under `deliveries/`, so a redelivery or a replay is recognised even
//! after a restart.

use crate::server::webhook::{Intent, Source};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// One queued piece of work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub seq: u64,
    pub source: Source,
    /// The delivery id it came with (empty when the sender gives none).
    pub delivery: String,
    pub received_at: u64,
    /// Runs that ended in a passing failure (retried up to a limit).
    pub attempts: u32,
    /// Runs begun that never came to an end (the process died in them); after
    /// [`MAX_STARTS`] the job is set aside instead of replayed at every start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub starts: u32,
    pub intent: Intent,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Unfinished runs after which a job is set aside (`queue/<seq>.set-aside`).
pub const MAX_STARTS: u32 = 3;

/// What [`Store::open`] found.
pub struct Opened {
    pub store: Store,
    /// Jobs left by the last run, oldest first: queued again.
    pub jobs: Vec<Job>,
    /// Jobs begun [`MAX_STARTS`] times without an end, set aside with their files' new paths.
    pub set_aside: Vec<(Job, PathBuf)>,
}

impl Job {
    pub fn issue(&self) -> &str {
        self.intent.issue()
    }
}

/// How long delivery ids are remembered.
const DELIVERY_MEMORY: Duration = Duration::from_secs(30 * 86_400);

/// The files of the queue and of the delivery ids.
pub struct Store {
    queue: PathBuf,
    deliveries: PathBuf,
    next_seq: AtomicU64,
    /// Serialises "seen?" + "write jobs" so a concurrent redelivery cannot slip between them.
    accept: Mutex<()>,
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Store {
    /// Opens (creating) the state directory; returns the jobs left by the last run, oldest first.
    pub fn open(state_dir: &Path) -> std::io::Result<Opened> {
        let queue = state_dir.join("queue");
        let deliveries = state_dir.join("deliveries");
        std::fs::create_dir_all(&queue)?;
        std::fs::create_dir_all(&deliveries)?;
        let mut jobs = Vec::new();
        for entry in std::fs::read_dir(&queue)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(".tmp-") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Job>(&b).ok())
            {
                Some(job) => jobs.push(job),
                None => {
                    // Unreadable (written by another version?): keep it aside, never lose it.
                    let _ = std::fs::rename(&path, path.with_extension("unreadable"));
                }
            }
        }
        jobs.sort_by_key(|j| j.seq);
        // a job that killed the process again and again must not replay forever
        let mut set_aside = Vec::new();
        jobs.retain(|j| {
            if j.starts < MAX_STARTS {
                return true;
            }
            let from = queue.join(format!("{:020}.json", j.seq));
            let to = from.with_extension("set-aside");
            let _ = std::fs::rename(&from, &to);
            set_aside.push((j.clone(), to));
            false
        });
        let now = SystemTime::now();
        for entry in std::fs::read_dir(&deliveries)?.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > DELIVERY_MEMORY);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let next = jobs.last().map_or(1, |j| j.seq + 1);
        let seq_floor = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        Ok(Opened {
            store: Store {
                queue,
                deliveries,
                // Sequence numbers grow across restarts (time-based floor), so file names sort.
                next_seq: AtomicU64::new(next.max(seq_floor)),
                accept: Mutex::new(()),
            },
            jobs,
            set_aside,
        })
    }

    fn job_path(&self, seq: u64) -> PathBuf {
        self.queue.join(format!("{seq:020}.json"))
    }

    /// Writes (or rewrites) a job durably.
    pub fn put(&self, job: &Job) -> std::io::Result<()> {
        let tmp = self.queue.join(format!(".tmp-{}", job.seq));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(job).expect("serializable"))?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.job_path(job.seq))?;
        sync_dir(&self.queue);
        Ok(())
    }

    pub fn remove(&self, seq: u64) {
        let _ = std::fs::remove_file(self.job_path(seq));
        sync_dir(&self.queue);
    }

    fn delivery_path(&self, source: Source, id: &str) -> PathBuf {
        let h = sha2::Sha256::digest(format!("{}:{id}", source.name()).as_bytes());
        self.deliveries.join(hex::encode(&h[..16]))
    }

    /// The marker of a signed body (a replay carries the same body under any delivery id).
    fn body_path(&self, source: Source, body: &[u8]) -> PathBuf {
        let mut h = sha2::Sha256::new();
        h.update(b"body:");
        h.update(source.name().as_bytes());
        h.update(b":");
        h.update(body);
        self.deliveries
            .join(format!("body-{}", hex::encode(&h.finalize()[..16])))
    }

    /// Records the delivery and writes its jobs; `Ok(None)` when the delivery id was seen
    /// before, or the `signed_body` was accepted before whatever its id (nothing is written).
    /// Everything is on disk before this returns.
    pub fn accept(
        &self,
        source: Source,
        delivery: Option<&str>,
        signed_body: Option<&[u8]>,
        intents: Vec<Intent>,
        now: u64,
    ) -> std::io::Result<Option<Vec<Job>>> {
        let _guard = self.accept.lock().unwrap_or_else(|e| e.into_inner());
        let markers: Vec<PathBuf> = delivery
            .map(|id| self.delivery_path(source, id))
            .into_iter()
            .chain(signed_body.map(|b| self.body_path(source, b)))
            .collect();
        if markers.iter().any(|m| m.exists()) {
            return Ok(None);
        }
        let jobs: Vec<Job> = intents
            .into_iter()
            .map(|intent| Job {
                seq: self.next_seq.fetch_add(1, Ordering::SeqCst),
                source,
                delivery: delivery.unwrap_or_default().to_string(),
                received_at: now,
                attempts: 0,
                starts: 0,
                intent,
            })
            .collect();
        for (i, job) in jobs.iter().enumerate() {
            if let Err(e) = self.put(job) {
                for written in &jobs[..i] {
                    self.remove(written.seq);
                }
                return Err(e);
            }
        }
        for m in &markers {
            let mut f = File::create(m)?;
            f.write_all(delivery.unwrap_or_default().as_bytes())?;
            f.sync_all()?;
        }
        if !markers.is_empty() {
            sync_dir(&self.deliveries);
        }
        Ok(Some(jobs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_begun_three_times_without_an_end_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().store;
        let close = |issue: &str| Intent::Close {
            issue: issue.into(),
        };
        let jobs = store
            .accept(
                Source::Tracker,
                None,
                None,
                vec![close("P-1"), close("P-2")],
                0,
            )
            .unwrap()
            .unwrap();
        for starts in 1..=MAX_STARTS {
            store
                .put(&Job {
                    starts,
                    ..jobs[0].clone()
                })
                .unwrap();
            let opened = Store::open(dir.path()).unwrap();
            let set_aside = starts >= MAX_STARTS;
            assert_eq!(opened.set_aside.len(), usize::from(set_aside), "{starts}");
            assert_eq!(opened.jobs.len(), if set_aside { 1 } else { 2 }, "{starts}");
        }
        let opened = Store::open(dir.path()).unwrap();
        assert_eq!(opened.jobs.len(), 1);
        assert!(dir
            .path()
            .join(format!("queue/{:020}.set-aside", jobs[0].seq))
            .exists());
    }
}
