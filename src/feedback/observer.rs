//! The code hosts as one more observer of a deploy's events: a reporter that passes every
//! event on and, when the deploy starts work on a commit ([`Event::Deploying`]), posts
//! *pending* on the side (the deploy does not wait for it); [`Watch::finish`] posts the end.

use super::{CodeHosts, Host, Report, Session, State, Status};
use crate::output::{Event, Reporter, SharedReporter};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// How the deploy ended, for the code host.
#[derive(Debug, Clone)]
pub enum End {
    /// The bench runs (or an older commit was skipped: `url` is the running bench's).
    Up {
        url: Option<String>,
        note: String,
    },
    Failed {
        reason: String,
    },
}

/// The pending post, running beside the deploy: the session it opened and what it said.
type Pending = JoinHandle<(Session, Report)>;

struct Shared {
    host: Option<Host>,
    /// Why no status is posted (no token, no code host for the repository).
    note: Option<String>,
    issue: String,
    branch: String,
    /// The commit being deployed and the pending post's task.
    started: Mutex<Option<(String, Pending)>>,
    /// Keep the pull request's comment current (`--pr-comment`).
    pr_comment: bool,
    /// The dashboard's page of the bench (`--dashboard-url`).
    log_url: Option<String>,
}

struct Observing {
    inner: SharedReporter,
    shared: Arc<Shared>,
}

impl Reporter for Observing {
    fn report(&self, event: Event) {
        if let (Event::Deploying { commit }, Some(host)) = (&event, &self.shared.host) {
            let mut started = self
                .shared
                .started
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if started.is_none() {
                let status = Status {
                    state: State::Pending,
                    issue: self.shared.issue.clone(),
                    branch: self.shared.branch.clone(),
                    commit: commit.clone(),
                    url: None,
                    log_url: self.shared.log_url.clone(),
                    description: format!("benchctl is deploying {}", self.shared.issue),
                };
                let host = host.clone();
                let task = tokio::spawn(async move {
                    let mut session = Session::default();
                    let report = host.post(&status, &mut session).await;
                    (session, report)
                });
                *started = Some((commit.clone(), task));
            }
        }
        self.inner.report(event)
    }
}

/// A deploy being watched.
pub struct Watch {
    shared: Arc<Shared>,
    reporter: SharedReporter,
}

/// Watches the deploy of `branch` (issue `issue`) of the repository at `location` (its public
/// URL): the reporter to give the deploy, and the watch to finish. A note says why nothing will
/// be posted, when a code host is known but cannot be told.
pub fn watch(
    hosts: &CodeHosts,
    location: &str,
    issue: &str,
    branch: &str,
    reporter: &SharedReporter,
) -> (SharedReporter, Watch) {
    let (host, note) = match hosts.host(location) {
        Ok(h) => (h, None),
        Err(note) => {
            reporter.report(Event::Info(format!("code host: {note}")));
            (None, Some(note))
        }
    };
    let shared = Arc::new(Shared {
        host,
        note,
        issue: issue.to_string(),
        branch: branch.to_string(),
        started: Mutex::new(None),
        pr_comment: hosts.pr_comment,
        log_url: hosts.page_of(issue),
    });
    let observing: SharedReporter = Arc::new(Observing {
        inner: reporter.clone(),
        shared: shared.clone(),
    });
    (
        observing,
        Watch {
            shared,
            reporter: reporter.clone(),
        },
    )
}

impl Watch {
    /// Posts how the deploy ended, after its pending post; `None` when there is nothing to say
    /// (no code host, or the deploy never started work on a commit: a no-op). A failed post is
    /// a warning and the report's `error`, never the deploy's.
    pub async fn finish(self, end: End) -> Option<Report> {
        let started = self
            .shared
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(host) = &self.shared.host else {
            return self.shared.note.as_ref().map(|note| Report {
                host: "",
                repo: String::new(),
                state: "none".into(),
                error: None,
                note: Some(note.clone()),
                pull_request: None,
            });
        };
        let (commit, task) = started?;
        let (mut session, pending) = task.await.unwrap_or_else(|e| {
            (
                Session::default(),
                Report {
                    host: host.target.kind.as_str(),
                    repo: host.target.repo.clone(),
                    state: "none".into(),
                    error: Some(format!("the pending post failed: {e}")),
                    note: None,
                    pull_request: None,
                },
            )
        });
        if let Some(e) = &pending.error {
            self.reporter
                .report(Event::Warn(format!("code host: pending not posted: {e}")));
        }
        let (state, url, description) = match end {
            End::Up { url, note } => (State::Success, url, note),
            End::Failed { reason } => (State::Failure, None, reason),
        };
        let status = Status {
            state,
            issue: self.shared.issue.clone(),
            branch: self.shared.branch.clone(),
            commit,
            url,
            log_url: self.shared.log_url.clone(),
            description,
        };
        let mut report = host.post(&status, &mut session).await;
        if self.shared.pr_comment {
            let said = host.comment(&status, status.url.as_deref()).await;
            self.reporter.report(Event::Info(format!(
                "code host: pull request comment {said}"
            )));
            report.pull_request = Some(said);
        }
        match &report.error {
            Some(e) => self.reporter.report(Event::Warn(format!(
                "code host: {} not posted: {e}",
                report_state(state)
            ))),
            None => self.reporter.report(Event::Info(format!(
                "code host: {} {} of {} is {}",
                report.host,
                report.repo,
                crate::naming::short_commit(&status.commit),
                report.state
            ))),
        }
        Some(report)
    }
}

fn report_state(state: State) -> &'static str {
    match state {
        State::Pending => "pending",
        State::Success => "success",
        State::Failure => "failure",
        State::Inactive => "inactive",
    }
}

/// A removed bench, as its labels name it.
pub struct Removed<'a> {
    /// The repository's public URL.
    pub location: &'a str,
    pub issue: &'a str,
    pub commit: &'a str,
    pub branch: &'a str,
}

/// Tells the code host that the bench was removed (and, with `--pr-comment`, the pull
/// request's comment). `None` when there is no code host to tell.
pub async fn removed(
    hosts: &CodeHosts,
    bench: &Removed<'_>,
    reporter: &SharedReporter,
) -> Option<Report> {
    let host = match hosts.host(bench.location) {
        Ok(Some(h)) => h,
        Ok(None) => return None,
        Err(note) => {
            reporter.report(Event::Info(format!("code host: {note}")));
            return None;
        }
    };
    let issue = bench.issue;
    let status = Status {
        state: State::Inactive,
        issue: issue.to_string(),
        branch: bench.branch.to_string(),
        commit: bench.commit.to_string(),
        url: None,
        log_url: None,
        description: format!("the bench of {issue} was removed"),
    };
    let mut report = host.post(&status, &mut Session::default()).await;
    match &report.error {
        Some(e) => reporter.report(Event::Info(format!("code host: {e}"))),
        None => reporter.report(Event::Info(format!(
            "code host: {} {}: the bench of {issue} is inactive",
            report.host, report.repo
        ))),
    }
    if hosts.pr_comment && !bench.branch.is_empty() {
        report.pull_request = Some(host.comment(&status, None).await);
    }
    Some(report)
}
