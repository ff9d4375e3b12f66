//! The job queue of `benchctl serve`: persisted before a delivery is acknowledged, one job per
//! issue at a time, issues in parallel up to a limit, newer pushes superseding queued older ones.
//!
//! Each job is a JSON file `queue/<seq>.json` under the state directory, written (and synced)
//! before the sender gets its 2xx and removed only when the job is finished; on start every
//! file left is queued again, so neither a restart nor a crash mid-job loses a delivery.
//! Delivery ids are kept as files under `deliveries/` so a redelivery is recognised even after a
//! restart.

use crate::server::webhook::{Intent, Source};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify, Semaphore};

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
    pub intent: Intent,
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
    pub fn open(state_dir: &Path) -> std::io::Result<(Store, Vec<Job>)> {
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
        Ok((
            Store {
                queue,
                deliveries,
                // Sequence numbers grow across restarts (time-based floor), so file names sort.
                next_seq: AtomicU64::new(next.max(seq_floor)),
                accept: Mutex::new(()),
            },
            jobs,
        ))
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

/// Why a running job is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    No,
    /// A close of the issue arrived: the job's work must not stand.
    Superseded,
    /// The service is stopping: abandon safely, the job runs again on the next start.
    Shutdown,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(String),
    /// Will not get better by retrying (bad configuration, no matching transition, failed build).
    Failed(String),
    /// A passing failure (Tracker unavailable, lock busy): tried again later, a bounded number
    /// of times.
    Retry(String),
    /// Stopped by a shutdown: stays queued for the next start.
    Abandoned(String),
}

/// Runs one job (the server's worker implements it).
#[async_trait::async_trait]
pub trait Runner: Send + Sync + 'static {
    async fn run(&self, job: &Job, cancel: watch::Receiver<Cancel>) -> Outcome;
    /// Called once per finished job, with how it ended (logging, metrics).
    fn finished(&self, job: &Job, outcome: &Outcome);
    /// Called when a queued job is dropped because a newer one replaces it.
    fn superseded(&self, job: &Job, by: &Job);
    /// Whether `issue` is confirmed closed: a close notification cancels the issue's deploys
    /// only then (anyone who can reach the endpoint cannot stop work with a false close).
    async fn confirms_close(&self, issue: &str) -> bool;
}

struct Running {
    seq: u64,
    kind: &'static str,
    cancel: watch::Sender<Cancel>,
}

#[derive(Default)]
struct Inner {
    queued: HashMap<String, VecDeque<Job>>,
    workers: HashSet<String>,
    running: HashMap<String, Running>,
    stopping: bool,
}

pub struct Scheduler {
    inner: Mutex<Inner>,
    store: Arc<Store>,
    permits: Arc<Semaphore>,
    runner: Arc<dyn Runner>,
    changed: Notify,
    max_attempts: u32,
    retry_base: Duration,
}

impl Scheduler {
    pub fn new(
        store: Arc<Store>,
        runner: Arc<dyn Runner>,
        max_parallel: usize,
        max_attempts: u32,
        retry_base: Duration,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            inner: Mutex::new(Inner::default()),
            store,
            permits: Arc::new(Semaphore::new(max_parallel.max(1))),
            runner,
            changed: Notify::new(),
            max_attempts: max_attempts.max(1),
            retry_base,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs waiting plus jobs running.
    pub fn depth(&self) -> (usize, usize) {
        let inner = self.lock();
        (
            inner.queued.values().map(VecDeque::len).sum(),
            inner.running.len(),
        )
    }

    /// Queues a job that is already stored.
    pub fn enqueue(self: &Arc<Self>, job: Job) {
        let mut inner = self.lock();
        let issue = job.issue().to_string();
        let queue = inner.queued.entry(issue.clone()).or_default();
        // A newer push replaces queued deploys of the issue. A close replaces nothing yet: once
        // the Tracker confirms the issue is closed, it replaces the deploys and branch removals
        // queued before it and stops a running deploy (the close tears everything down anyway).
        let replaces = |old: &Job| {
            matches!(
                (&job.intent, &old.intent),
                (Intent::Deploy { .. }, Intent::Deploy { .. })
            )
        };
        let (dropped, kept): (Vec<Job>, Vec<Job>) = queue.drain(..).partition(|j| replaces(j));
        queue.extend(kept);
        queue.push_back(job.clone());
        for old in &dropped {
            self.store.remove(old.seq);
            self.runner.superseded(old, &job);
        }
        if matches!(job.intent, Intent::Close { .. }) {
            let me = self.clone();
            let close = job.clone();
            tokio::spawn(async move {
                if me.runner.confirms_close(close.issue()).await {
                    me.close_confirmed(&close);
                }
            });
        }
        if !inner.stopping && inner.workers.insert(issue.clone()) {
            let me = self.clone();
            tokio::spawn(async move { me.work(issue).await });
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// A confirmed close: the issue's deploys and branch removals queued before it are dropped
    /// and its running deploy is stopped.
    fn close_confirmed(&self, close: &Job) {
        let issue = close.issue().to_string();
        let mut inner = self.lock();
        let mut dropped = Vec::new();
        if let Some(queue) = inner.queued.get_mut(&issue) {
            let (gone, kept): (Vec<Job>, Vec<Job>) = queue.drain(..).partition(|j| {
                j.seq < close.seq
                    && matches!(j.intent, Intent::Deploy { .. } | Intent::Remove { .. })
            });
            queue.extend(kept);
            dropped = gone;
        }
        if let Some(r) = inner.running.get(&issue) {
            if r.kind == "deploy" && r.seq < close.seq {
                let _ = r.cancel.send(Cancel::Superseded);
            }
        }
        drop(inner);
        for old in &dropped {
            self.store.remove(old.seq);
            self.runner.superseded(old, close);
        }
        self.changed.notify_waiters();
    }

    /// Runs the issue's jobs one after another, each under a permit of the parallel limit.
    async fn work(self: Arc<Self>, issue: String) {
        loop {
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .expect("never closed");
            let (job, rx) = {
                let mut inner = self.lock();
                let next = if inner.stopping {
                    None
                } else {
                    inner.queued.get_mut(&issue).and_then(VecDeque::pop_front)
                };
                let Some(job) = next else {
                    inner.workers.remove(&issue);
                    if inner.queued.get(&issue).is_some_and(VecDeque::is_empty) {
                        inner.queued.remove(&issue);
                    }
                    drop(inner);
                    self.changed.notify_waiters();
                    return;
                };
                let (tx, rx) = watch::channel(Cancel::No);
                inner.running.insert(
                    issue.clone(),
                    Running {
                        seq: job.seq,
                        kind: job.intent.kind(),
                        cancel: tx,
                    },
                );
                (job, rx)
            };
            self.changed.notify_waiters();
            let outcome = self.runner.run(&job, rx).await;
            drop(permit);
            self.runner.finished(&job, &outcome);
            let retry_after = {
                let mut inner = self.lock();
                inner.running.remove(&issue);
                match &outcome {
                    Outcome::Done(_) | Outcome::Failed(_) => {
                        self.store.remove(job.seq);
                        None
                    }
                    Outcome::Abandoned(_) => None,
                    Outcome::Retry(_) if job.attempts + 1 >= self.max_attempts => {
                        self.store.remove(job.seq);
                        None
                    }
                    Outcome::Retry(_) => {
                        let mut again = job.clone();
                        again.attempts += 1;
                        let _ = self.store.put(&again);
                        let delay = self
                            .retry_base
                            .saturating_mul(1 << again.attempts.min(6))
                            .min(Duration::from_secs(300));
                        inner
                            .queued
                            .entry(issue.clone())
                            .or_default()
                            .push_front(again);
                        Some(delay)
                    }
                }
            };
            self.changed.notify_waiters();
            if let Some(d) = retry_after {
                tokio::time::sleep(d).await;
            }
        }
    }

    /// The seq of the job running for `issue`, if any (tests and logs).
    pub fn running(&self, issue: &str) -> Option<u64> {
        self.lock().running.get(issue).map(|r| r.seq)
    }

    /// Stops taking jobs; waits up to `grace` for running ones, then asks them to abandon
    /// (they stay queued on disk) and waits for that.
    pub async fn shutdown(&self, grace: Duration) {
        self.lock().stopping = true;
        let deadline = tokio::time::Instant::now() + grace;
        // after asking jobs to abandon, their clean-up (removing a half-made container) gets
        // this long before the process exits anyway (their files stay queued)
        let cleanup = deadline + Duration::from_secs(30);
        let mut cancelled = false;
        loop {
            let notified = self.changed.notified();
            if self.lock().running.is_empty() || tokio::time::Instant::now() >= cleanup {
                return;
            }
            if !cancelled && tokio::time::Instant::now() >= deadline {
                for r in self.lock().running.values() {
                    let _ = r.cancel.send(Cancel::Shutdown);
                }
                cancelled = true;
            }
            let _ = tokio::time::timeout_at(
                if cancelled {
                    tokio::time::Instant::now() + Duration::from_secs(1)
                } else {
                    deadline
                },
                notified,
            )
            .await;
        }
    }
}
