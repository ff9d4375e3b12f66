//! `sleep` and `wake`: what was stopped or started, as lines or JSON.

use super::*;
use crate::app::sleep::{SleepOutcome, WakeOutcome};

/// `sleep`'s result.
pub struct Slept(pub SleepOutcome);

impl Report for Slept {
    fn json(&self) -> Value {
        to_json(&self.0)
    }
    fn human(&self) -> Vec<Line> {
        let o = &self.0;
        vec![Line::Out(match o.slept {
            true => format!(
                "{} sleeps (stopped {}); `benchctl wake {}`, a deploy or a request through \
                 serve's proxy wakes it",
                o.issue,
                o.stopped.join(", "),
                o.issue
            ),
            false => format!(
                "{} already sleeps, since {} ({})",
                o.issue,
                crate::clock::utc(o.since),
                o.reason
            ),
        })]
    }
}

/// `wake`'s result.
pub struct Woke(pub WakeOutcome);

impl Report for Woke {
    fn json(&self) -> Value {
        to_json(&self.0)
    }
    fn human(&self) -> Vec<Line> {
        let o = &self.0;
        let at = o.url.as_deref().unwrap_or("-");
        vec![Line::Out(match o.woke {
            true => format!(
                "{} is awake at {at} (answered {} ms after its start{}{})",
                o.issue,
                o.ready_ms,
                o.slept_seconds
                    .map(|s| format!("; it slept {}", age(Some(s))))
                    .unwrap_or_default(),
                if o.relinked {
                    "; its new address is in the Tracker"
                } else {
                    ""
                }
            ),
            false => format!("{} is awake at {at}", o.issue),
        })]
    }
}
