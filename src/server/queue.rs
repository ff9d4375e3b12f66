//! The job queue of `benchctl serve`: one job per issue at a time, issues in parallel up to a
//! limit, newer pushes superseding queued older ones, a confirmed close stopping an issue's
//! deploys. The jobs themselves are kept on disk by [`Store`] before a delivery is
//! acknowledged.

pub use super::store::{Job, Store};
use crate::server::webhook::Intent;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};

/// How long a job asked to stop at its deadline gets to clean up.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// Why a running job is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    No,
    /// A close of the issue arrived: the job's work must not stand.
    Superseded,
    /// The service is stopping: abandon safely, the job runs again on the next start.
    Shutdown,
    /// The job ran past `--job-timeout`: stop, clean up, and fail.
    Deadline,
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
    /// After a job panicked: release what it held (the issue's lock) so the issue's next job
    /// can run.
    async fn recover(&self, job: &Job);
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
    /// How long one job may run (`--job-timeout`).
    job_timeout: Duration,
}

impl Scheduler {
    pub fn new(
        store: Arc<Store>,
        runner: Arc<dyn Runner>,
        max_parallel: usize,
        max_attempts: u32,
        retry_base: Duration,
        job_timeout: Duration,
    ) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            inner: Mutex::new(Inner::default()),
            store,
            permits: Arc::new(Semaphore::new(max_parallel.max(1))),
            runner,
            changed: Notify::new(),
            max_attempts: max_attempts.max(1),
            retry_base,
            job_timeout,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The (issue, kind) of the running jobs and of the waiting ones.
    #[allow(clippy::type_complexity)]
    pub fn jobs(&self) -> (Vec<(String, String)>, Vec<(String, String)>) {
        let inner = self.lock();
        let mut running: Vec<(String, String)> = inner
            .running
            .iter()
            .map(|(issue, r)| (issue.clone(), r.kind.to_string()))
            .collect();
        running.sort();
        let mut waiting: Vec<(String, String)> = inner
            .queued
            .values()
            .flatten()
            .map(|j| (j.issue().to_string(), j.intent.kind().to_string()))
            .collect();
        waiting.sort();
        (running, waiting)
    }

    /// How many jobs of `issue` wait.
    pub fn queued(&self, issue: &str) -> usize {
        self.lock()
            .queued
            .get(issue)
            .map(VecDeque::len)
            .unwrap_or(0)
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
            // a run that takes the process down counts: after MAX_STARTS it is set aside
            let mut started = job.clone();
            started.starts += 1;
            let _ = self.store.put(&started);
            let outcome = self.run_bounded(&job, rx).await;
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
                    Outcome::Abandoned(_) => {
                        // a clean stop is no failed start
                        let _ = self.store.put(&job);
                        None
                    }
                    Outcome::Retry(_) if job.attempts + 1 >= self.max_attempts => {
                        self.store.remove(job.seq);
                        None
                    }
                    Outcome::Retry(_) => {
                        let mut again = job.clone();
                        again.attempts += 1;
                        again.starts = 0;
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

    /// Runs `job` within the job timeout (past it the job is asked to stop and clean up, and
    /// gets [`STOP_GRACE`] more), turning a panic into a failure whose lock is released.
    async fn run_bounded(&self, job: &Job, rx: watch::Receiver<Cancel>) -> Outcome {
        use futures_util::FutureExt;
        let run = std::panic::AssertUnwindSafe(self.runner.run(job, rx)).catch_unwind();
        tokio::pin!(run);
        let ended = tokio::select! {
            r = &mut run => r,
            _ = tokio::time::sleep(self.job_timeout) => {
                if let Some(r) = self.lock().running.get(job.issue()) {
                    let _ = r.cancel.send(Cancel::Deadline);
                }
                match tokio::time::timeout(STOP_GRACE, &mut run).await {
                    Ok(r) => r,
                    Err(_) => Ok(Outcome::Failed(format!(
                        "ran past the job timeout of {} s (--job-timeout) and did not stop \
                         within {} s more; it was abandoned",
                        self.job_timeout.as_secs(),
                        STOP_GRACE.as_secs()
                    ))),
                }
            }
        };
        match ended {
            Ok(o) => o,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                self.runner.recover(job).await;
                Outcome::Failed(format!(
                    "the job panicked ({}); its lock was released and it is not run again \
                     (a bug: please report it)",
                    crate::secret::redact(&what)
                ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::webhook::Source;

    /// Runs `Close` jobs: P-1 panics, P-2 waits to be told to stop, others succeed.
    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Runner for Fake {
        async fn run(&self, job: &Job, mut cancel: watch::Receiver<Cancel>) -> Outcome {
            match job.issue() {
                "P-1" => panic!("boom in P-1"),
                "P-2" => {
                    let c = cancel.wait_for(|c| *c != Cancel::No).await.map(|c| *c);
                    Outcome::Failed(format!("told {c:?}"))
                }
                _ => Outcome::Done("ok".into()),
            }
        }
        fn finished(&self, job: &Job, outcome: &Outcome) {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {outcome:?}", job.issue()));
        }
        fn superseded(&self, _: &Job, _: &Job) {}
        async fn confirms_close(&self, _: &str) -> bool {
            false
        }
        async fn recover(&self, job: &Job) {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} recovered", job.issue()));
        }
    }

    #[tokio::test]
    async fn a_panic_or_a_deadline_fails_the_job_and_frees_its_issue_and_slot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap().store);
        let fake = Arc::new(Fake::default());
        // one slot: a job that never gave it back would stall everything after it
        let sched = Scheduler::new(
            store.clone(),
            fake.clone(),
            1,
            3,
            Duration::from_millis(10),
            Duration::from_millis(300),
        );
        for issue in ["P-1", "P-1", "P-2", "P-3"] {
            let jobs = store
                .accept(
                    Source::Tracker,
                    None,
                    None,
                    vec![Intent::Close {
                        issue: issue.into(),
                    }],
                    0,
                )
                .unwrap()
                .unwrap();
            sched.enqueue(jobs[0].clone());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while fake
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| !l.ends_with("recovered"))
            .count()
            < 4
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                fake.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = fake.log.lock().unwrap().clone();
        assert_eq!(
            log.iter().filter(|l| *l == "P-1 recovered").count(),
            2,
            "{log:?}"
        );
        assert_eq!(
            log.iter()
                .filter(|l| l.starts_with("P-1 Failed(\"the job panicked (boom in P-1)"))
                .count(),
            2,
            "{log:?}"
        );
        assert!(
            log.contains(&"P-2 Failed(\"told Ok(Deadline)\")".to_string()),
            "{log:?}"
        );
        assert!(log.contains(&"P-3 Done(\"ok\")".to_string()), "{log:?}");
        // failed jobs are not kept to replay
        assert!(Store::open(dir.path()).unwrap().jobs.is_empty());
    }
}
