//! serve's idle clock: when each bench was last used, from the requests its proxy forwards
//! and, for every bench, from its inbound connections (those it accepted, and those open from
//! another host; read every `--sleep-sample`). What a bench does on its own (polling the
//! internet, broadcasting on its bridge) is not use. A bench unused for `--sleep-after` is put
//! to sleep (unless pinned). The clean-up's `--ttl` and the cap's choice of whom to stop count
//! only requests through the front door (and deploys): a bench's own connections, to itself
//! included, never extend them. The clock is kept in `activity.json` under the state
//! directory, so a restart does not forget who was busy.

use super::{log, Metrics};
use crate::app::lock::LockOptions;
use crate::app::{self, Context};
use crate::engine::power::Inbound;
use crate::engine::{labels, Engine};
use crate::naming::container_name;
use crate::output::SharedReporter;
use crate::tracker::TrackerClient;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// When to put benches to sleep.
#[derive(Debug, Clone)]
pub struct SleepPolicy {
    /// Unused this long, a bench sleeps (`--sleep-after`).
    pub after: Duration,
    /// How often the network counters are read (`--sleep-sample`).
    pub sample: Duration,
    /// An issue carrying this Tracker tag is never put to sleep (`--pin-tag`).
    pub pin_tag: Option<String>,
}

/// One bench's use, as far as serve saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seen {
    /// Unix seconds of the last request or inbound connection.
    last: u64,
    /// Unix seconds of the last request through the front door (what `--ttl` and the cap
    /// count from).
    #[serde(default)]
    requested: u64,
    /// The accepted connections' last reading (not kept across restarts: a new process reads
    /// afresh).
    #[serde(skip)]
    accepted: Option<u64>,
}

/// When each bench was last used (see the module's header).
pub struct Clock {
    seen: Mutex<HashMap<String, Seen>>,
    path: PathBuf,
    /// When this process started: a bench first seen now counts as used now.
    started: u64,
}

impl Clock {
    /// The clock kept under `state_dir` (empty when there is none yet).
    pub fn load(state_dir: &std::path::Path) -> Clock {
        let path = state_dir.join("activity.json");
        let seen = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Clock {
            seen: Mutex::new(seen),
            path,
            started: crate::clock::now_unix(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Seen>) -> T) -> T {
        f(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A request for `issue`'s bench.
    pub fn request(&self, issue: &str) {
        let now = crate::clock::now_unix();
        self.with(|m| {
            let s = m.entry(issue.to_string()).or_default();
            s.last = now;
            s.requested = now;
        })
    }

    /// A reading of `issue`'s inbound use: a connection accepted since the last reading, or
    /// one open from another host, counts as use.
    fn sampled(&self, issue: &str, seen: Option<Inbound>, deployed_at: Option<u64>) {
        let now = crate::clock::now_unix();
        let floor = self.started.max(deployed_at.unwrap_or(0));
        self.with(|m| {
            let s = m.entry(issue.to_string()).or_default();
            if let Some(seen) = seen {
                let accepted = s.accepted.is_some_and(|a| a != seen.accepted);
                if accepted || seen.open > 0 {
                    s.last = now;
                }
                s.accepted = Some(seen.accepted);
            }
            // a restart or a redeploy starts the clock again
            s.last = s.last.max(floor);
        })
    }

    /// A bench that was just woken or put to sleep: its counters start afresh.
    pub fn reset(&self, issue: &str) {
        let now = crate::clock::now_unix();
        self.with(|m| {
            let s = m.entry(issue.to_string()).or_default();
            s.last = now;
            s.accepted = None;
        })
    }

    /// When `issue`'s bench was last used, as far as this clock knows.
    pub fn last(&self, issue: &str) -> Option<u64> {
        self.with(|m| m.get(issue).map(|s| s.last))
    }

    /// Every bench's last request through the front door (the clean-up's `--ttl` and the
    /// cap count from it, and from the bench's deploy).
    pub fn snapshot(&self) -> HashMap<String, u64> {
        self.with(|m| m.iter().map(|(k, s)| (k.clone(), s.requested)).collect())
    }

    /// Writes the clock to `activity.json` (atomically: a new file renamed over the old).
    fn save(&self) {
        let text = self.with(|m| serde_json::to_vec(m).unwrap_or_default());
        let tmp = self.path.with_extension("json.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

/// How a wake under way ends (`None` until it does).
type WakeDone = watch::Receiver<Option<Result<(), String>>>;

/// Wakes benches for serve's proxy and dashboard: one wake per issue at a time, however many
/// requests wait for it.
pub struct Waker {
    pub engine: Engine,
    pub tracker: Option<TrackerClient>,
    pub lock: LockOptions,
    /// How long a woken bench may take to answer.
    pub ready_timeout: Duration,
    pub clock: Arc<Clock>,
    pub metrics: Arc<Metrics>,
    /// The cap a wake makes room under.
    pub cap: crate::app::cap::Cap,
    inflight: Mutex<HashMap<String, WakeDone>>,
    notifier: crate::notify::Notifier,
}

impl Waker {
    pub fn new(
        engine: Engine,
        tracker: Option<TrackerClient>,
        lock: LockOptions,
        ready_timeout: Duration,
        clock: Arc<Clock>,
        metrics: Arc<Metrics>,
        cap: crate::app::cap::Cap,
    ) -> Waker {
        Waker {
            cap,
            engine,
            tracker,
            lock,
            ready_timeout,
            clock,
            metrics,
            inflight: Mutex::new(HashMap::new()),
            notifier: crate::notify::Notifier::silent(),
        }
    }

    /// Whether a wake of `issue`'s bench is under way.
    pub fn waking(&self, issue: &str) -> bool {
        let map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        map.contains_key(issue)
    }

    /// Wakes `issue`'s bench (or joins the wake under way) and waits until it answers. The
    /// wake goes on when the caller stops waiting.
    pub async fn wake(self: &Arc<Self>, issue: &str, trigger: &'static str) -> Result<(), String> {
        let mut rx = {
            let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            match map.get(issue) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    map.insert(issue.to_string(), rx.clone());
                    let me = self.clone();
                    let issue = issue.to_string();
                    tokio::spawn(async move {
                        let result = me.wake_now(&issue, trigger).await;
                        me.inflight
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&issue);
                        let _ = tx.send(Some(result));
                    });
                    rx
                }
            }
        };
        let done = rx.wait_for(Option::is_some).await.map(|r| r.clone());
        match done {
            Ok(r) => r.unwrap_or(Ok(())),
            Err(_) => Err("the wake was abandoned".into()),
        }
    }

    async fn wake_now(&self, issue: &str, trigger: &'static str) -> Result<(), String> {
        let reporter: SharedReporter = Arc::new(super::jobs::LogReporter {
            issue: issue.to_string(),
        });
        let code_hosts = Default::default();
        let ctx = Context {
            engine: &self.engine,
            tracker: self.tracker.as_ref(),
            reporter: &reporter,
            notifier: &self.notifier,
            code_hosts: &code_hosts,
            lock: self.lock,
        };
        log(&format!("[{issue}] waking ({trigger})"));
        let cap = crate::app::cap::Cap {
            last_used: self.clock.snapshot(),
            ..self.cap.clone()
        };
        let woke = app::sleep::wake(&ctx, issue, self.ready_timeout, &cap).await;
        self.clock.reset(issue);
        let result = match &woke {
            Ok(_) => "done",
            Err(_) => "failed",
        };
        self.metrics.inc(
            "benchctl_wakes_total",
            &[("trigger", trigger), ("result", result)],
        );
        woke.map(|_| ())
            .map_err(|e| crate::secret::redact(&e.to_string()))
    }
}

/// Samples the network counters every `policy.sample` and puts benches unused for
/// `policy.after` to sleep (never a pinned one, or one whose issue has `policy.pin_tag`).
pub fn watch_idle(
    policy: SleepPolicy,
    engine: Engine,
    tracker: Option<TrackerClient>,
    lock: LockOptions,
    clock: Arc<Clock>,
    metrics: Arc<Metrics>,
) {
    log(&format!(
        "benches unused for {}s sleep (--sleep-after; inbound connections read every {}s)",
        policy.after.as_secs(),
        policy.sample.as_secs()
    ));
    tokio::spawn(async move {
        let notifier = crate::notify::Notifier::silent();
        let mut tick = tokio::time::interval(policy.sample);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sweep = sweep(
                &policy,
                &engine,
                tracker.as_ref(),
                lock,
                &clock,
                &metrics,
                &notifier,
            );
            if let Err(e) = sweep.await {
                log(&format!(
                    "warning: the idle clock could not read the benches: {e}"
                ));
            }
            clock.save();
        }
    });
}

/// One round of [`watch_idle`].
async fn sweep(
    policy: &SleepPolicy,
    engine: &Engine,
    tracker: Option<&TrackerClient>,
    lock: LockOptions,
    clock: &Clock,
    metrics: &Metrics,
    notifier: &crate::notify::Notifier,
) -> crate::Result<()> {
    let benches = app::inspect::benches(engine, None).await?;
    let now = crate::clock::now_unix();
    let pins = app::pin::pins(engine).await?;
    let mut idle_ones = Vec::new();
    for b in benches.iter().filter(|b| b.running) {
        let Some(issue) = b.labels.get(labels::ISSUE) else {
            continue;
        };
        if b.name != container_name(issue) {
            continue;
        }
        let deployed = b
            .labels
            .get(labels::DEPLOYED_AT)
            .and_then(|d| d.parse().ok());
        let seen = engine.power.inbound(&b.id).await.unwrap_or(None);
        clock.sampled(issue, seen, deployed);
        let idle = now.saturating_sub(clock.last(issue).unwrap_or(now));
        if idle < policy.after.as_secs() || app::pin::active(&pins, issue, now).is_some() {
            continue;
        }
        if let (Some(tag), Some(t)) = (&policy.pin_tag, tracker) {
            let tagged = t
                .get_issue(issue)
                .await
                .ok()
                .is_some_and(|v| app::pin::tagged(&v, tag));
            if tagged {
                continue;
            }
        }
        idle_ones.push((issue.clone(), idle));
    }
    // stopping takes up to the engine's grace period each: all at once
    let sleeps = idle_ones.iter().map(|(issue, idle)| async move {
        let reporter: SharedReporter = Arc::new(super::jobs::LogReporter {
            issue: issue.to_string(),
        });
        let code_hosts = Default::default();
        let ctx = Context {
            engine,
            tracker: None,
            reporter: &reporter,
            notifier,
            code_hosts: &code_hosts,
            // a bench being deployed is not idle: no wait
            lock: LockOptions {
                timeout: Duration::ZERO,
                ..lock
            },
        };
        log(&format!(
            "[{issue}] unused for {idle}s: putting it to sleep"
        ));
        match app::sleep::sleep(&ctx, issue, "idle").await {
            Ok(_) => {
                clock.reset(issue);
                metrics.inc("benchctl_sleeps_total", &[("reason", "idle")]);
            }
            Err(e) => log(&format!(
                "[{issue}] warning: could not put it to sleep: {e}"
            )),
        }
    });
    futures_util::future::join_all(sleeps).await;
    Ok(())
}
