//! The use cases both front ends call — deploy, teardown, link, and reading benches back —
//! given a [`Context`] (engine, Tracker, reporter, messengers, lock options). They never print:
//! they report [`Event`](crate::output::Event)s and return values the front ends render.

pub mod cap;
pub mod deploy;
pub mod disk;
pub mod egress;
pub mod gc;
pub mod inspect;
pub mod link;
pub mod lock;
pub mod pin;
pub mod record;
pub mod request;
pub mod routing;
pub mod sleep;
pub mod teardown;

use crate::app::lock::LockOptions;
use crate::engine::Engine;
use crate::notify::{Message, Notifier};
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;

/// What a use case works with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub engine: &'a Engine,
    /// The Tracker, when one is configured (a deploy without `link` leaves it alone).
    pub tracker: Option<&'a TrackerClient>,
    pub reporter: &'a SharedReporter,
    pub notifier: &'a Notifier,
    /// The code hosts a deploy's commit status goes to (none without tokens).
    pub code_hosts: &'a crate::feedback::CodeHosts,
    pub lock: LockOptions,
}

impl Context<'_> {
    /// Tells the messengers; one that fails is a warning, never an error.
    pub async fn notify(&self, message: &Message) {
        for w in self.notifier.send(message).await {
            self.reporter.report(Event::Warn(w));
        }
    }

    /// Tells the messengers that a deploy of `branch` failed (secrets redacted).
    pub async fn notify_failed(&self, issue: &str, branch: &str, e: &crate::Error) {
        self.notify(&Message::Failed {
            issue: issue.to_string(),
            branch: branch.to_string(),
            reason: crate::secret::redact(&e.to_string()),
        })
        .await
    }
}
