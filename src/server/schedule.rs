//! serve's own schedule: its clean-up (`--gc-interval`), queued every interval as a job like a
//! delivery's (stored, logged, counted in `/metrics`, shown on the dashboard), one at a time.

use super::log;
use super::queue::Scheduler;
use super::store::Store;
use super::webhook::{Intent, Source};
use std::sync::Arc;
use std::time::Duration;

/// How often serve queues its clean-up job, and what it removes.
#[derive(Debug, Clone)]
pub struct GcSchedule {
    pub interval: Duration,
    pub options: crate::app::gc::GcOptions,
}

/// Queues the clean-up every `gc.interval`, unless one is queued or running.
pub fn clean_up(gc: &GcSchedule, store: Arc<Store>, scheduler: Arc<Scheduler>) {
    let every = gc.interval;
    log(&format!(
        "cleaning up every {}s (--gc-interval){}",
        every.as_secs(),
        match gc.options.ttl {
            Some(t) => format!(", benches past {}s (--ttl)", t.as_secs()),
            None => String::new(),
        }
    ));
    tokio::spawn(async move {
        // the first one an interval after the start (a restart does not clean up at once)
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if scheduler.running("(gc)").is_some() || scheduler.queued("(gc)") > 0 {
                continue;
            }
            let s = store.clone();
            let accepted = tokio::task::spawn_blocking(move || {
                s.accept(
                    Source::Schedule,
                    None,
                    None,
                    vec![Intent::Gc],
                    crate::clock::now_unix(),
                )
            })
            .await;
            match accepted {
                Ok(Ok(Some(jobs))) => jobs.into_iter().for_each(|j| scheduler.enqueue(j)),
                Ok(Err(e)) => log(&format!("warning: cannot queue the clean-up: {e}")),
                _ => {}
            }
        }
    });
}
