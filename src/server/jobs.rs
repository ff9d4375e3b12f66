//! What each job does: the review flow (a transition chosen by `to.key`), the deploy flow (the
//! same [`app::deploy::run`] as the CLI), branch removal and the close flow (the same
//! [`app::teardown::run`]).

use super::queue::{Cancel, Job, Outcome, Runner};
use super::{log, Metrics, ServeConfig};
use crate::app::deploy::{Finished, Stop};
use crate::app::{self, Context};
use crate::engine::{labels, Engine};
use crate::notify::Notifier;
use crate::output::{Event, Reporter, SharedReporter};
use crate::server::webhook::{Intent, Review};
use crate::tracker::{TrackerClient, TrackerError};
use std::sync::Arc;
use tokio::sync::watch;

/// Logs what the orchestration reports, one line per event, prefixed with the issue.
pub(crate) struct LogReporter {
    pub(crate) issue: String,
}

impl Reporter for LogReporter {
    fn report(&self, event: Event) {
        match event {
            Event::Step(s) | Event::Done(s) | Event::Info(s) => {
                log(&format!("[{}] {s}", self.issue))
            }
            Event::Warn(s) => log(&format!("[{}] warning: {s}", self.issue)),
            Event::BuildOutput(_)
            | Event::FetchProgress { .. }
            | Event::ContextProgress { .. }
            | Event::Deploying { .. } => {}
        }
    }
}

pub struct Worker {
    pub cfg: Arc<ServeConfig>,
    pub engine: Engine,
    pub tracker: Option<TrackerClient>,
    pub notifier: Notifier,
    pub code_hosts: crate::feedback::CodeHosts,
    pub metrics: Arc<Metrics>,
    /// When each bench was last used: the clean-up's `--ttl` counts from it.
    pub clock: Arc<super::idle::Clock>,
}

/// A Tracker failure as a job outcome: passing failures are retried, the rest are not.
fn tracker_outcome(e: &TrackerError) -> Outcome {
    match e.status {
        None | Some(429) | Some(500..=599) | Some(409 | 412 | 423) => Outcome::Retry(e.to_string()),
        _ => Outcome::Failed(e.to_string()),
    }
}

impl Worker {
    fn tracker(&self, what: &str) -> Result<&TrackerClient, Outcome> {
        self.tracker.as_ref().ok_or_else(|| {
            Outcome::Failed(format!(
                "{what} needs the Tracker, and none is configured (BENCHCTL_TRACKER_TOKEN and \
                 BENCHCTL_TRACKER_ORG_ID / BENCHCTL_TRACKER_CLOUD_ORG_ID)"
            ))
        })
    }

    /// The Tracker for a job whose events `reporter` logs (its retries among them).
    fn job_tracker(&self, reporter: &SharedReporter) -> Option<TrackerClient> {
        self.tracker
            .as_ref()
            .map(|t| t.reporting_to(reporter.clone()))
    }

    /// The use cases' context for a job whose events `reporter` logs.
    fn context<'a>(
        &'a self,
        tracker: Option<&'a TrackerClient>,
        reporter: &'a SharedReporter,
    ) -> Context<'a> {
        Context {
            engine: &self.engine,
            tracker,
            reporter,
            notifier: &self.notifier,
            code_hosts: &self.code_hosts,
            lock: self.cfg.lock,
        }
    }

    /// The issue's status key (`Ok(None)` without a Tracker).
    async fn status_of(&self, issue: &str) -> Result<Option<String>, Outcome> {
        let Some(t) = &self.tracker else {
            return Ok(None);
        };
        let v = t.get_issue(issue).await.map_err(|e| tracker_outcome(&e))?;
        Ok(v["status"]["key"].as_str().map(str::to_string))
    }

    fn is_closed(&self, status: &str) -> bool {
        self.cfg.closed_statuses.iter().any(|c| c == status)
    }

    async fn review(
        &self,
        keys: &[&str],
        review: Review,
        repo: &str,
        branch: &str,
        title: &str,
        url: Option<&str>,
    ) -> Outcome {
        let Some(target) = self.cfg.review_targets.target(review) else {
            return Outcome::Done(format!(
                "no status is configured for a pull request {}",
                review.name()
            ));
        };
        let t = match self.tracker("the review flow") {
            Ok(t) => t,
            Err(o) => return o,
        };
        // the first key the Tracker knows
        let mut found = None;
        for (i, key) in keys.iter().enumerate() {
            match t.get_issue(key).await {
                Ok(v) => {
                    found = Some((*key, v));
                    break;
                }
                Err(e) if e.status == Some(404) && i + 1 < keys.len() => {
                    log(&format!(
                        "[{key}] not an issue of the Tracker; trying {}",
                        keys[i + 1]
                    ));
                }
                Err(e) => return tracker_outcome(&e),
            }
        }
        let Some((issue, issue_json)) = found else {
            return Outcome::Failed("no issue key found".into());
        };
        let status = issue_json["status"]["key"].as_str().unwrap_or("");
        if status == target {
            self.metrics
                .inc("benchctl_transitions_total", &[("result", "already")]);
            return Outcome::Done(format!("{issue} is already in status `{target}`"));
        }
        let transitions = match t.transitions(issue).await {
            Ok(v) => v,
            Err(e) => return tracker_outcome(&e),
        };
        let Some(tr) = transitions.iter().find(|tr| tr.to == target) else {
            self.metrics
                .inc("benchctl_transitions_total", &[("result", "no_transition")]);
            let available: Vec<String> = transitions
                .iter()
                .map(|t| format!("`{}` -> `{}`", t.id, t.to))
                .collect();
            return Outcome::Failed(format!(
                "no transition of {issue} leads from `{status}` to `{target}`; available: {}",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            ));
        };
        let comment = self.cfg.review_comment.then(|| {
            self.cfg.templates.render(
                "tracker/review-comment.txt",
                &[
                    ("issue", issue),
                    ("review", &review.name().replace('_', " ")),
                    ("status", target),
                    // the author's text, and a branch's name: no mention from the bot
                    ("title", &crate::feedback::markdown::no_mentions(title)),
                    ("pr_url", url.unwrap_or("")),
                    ("branch", &crate::feedback::markdown::no_mentions(branch)),
                    ("repo", repo),
                ],
            )
        });
        match t
            .execute_transition(issue, &tr.id, comment.as_deref())
            .await
        {
            Ok(_) => {
                self.metrics
                    .inc("benchctl_transitions_total", &[("result", "ok")]);
                Outcome::Done(format!(
                    "{issue}: `{status}` -> `{target}` by transition `{}` (pull request {})",
                    tr.id,
                    review.name()
                ))
            }
            Err(e) => {
                self.metrics
                    .inc("benchctl_transitions_total", &[("result", "error")]);
                tracker_outcome(&e)
            }
        }
    }

    async fn deploy(
        &self,
        issue: &str,
        repo: &str,
        branch: &str,
        mut cancel: watch::Receiver<Cancel>,
    ) -> Outcome {
        let Some(location) = self.cfg.repos.get(repo) else {
            return Outcome::Failed(format!(
                "repository `{repo}` is not configured; start serve with --repo {repo}=<clone URL>"
            ));
        };
        match self.status_of(issue).await {
            Ok(Some(s)) if self.is_closed(&s) => {
                return Outcome::Done(format!(
                    "{issue} is closed (`{s}`): branch {branch} is not deployed"
                ))
            }
            Err(o) => return o,
            _ => {}
        }
        let spec = match crate::git::resolve_repo(Some(location)) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let reporter: SharedReporter = Arc::new(LogReporter {
            issue: issue.to_string(),
        });
        let tracker = self.job_tracker(&reporter);
        let ctx = self.context(tracker.as_ref(), &reporter);
        // the branch's benchctl.toml joins the service's settings
        let inputs = crate::settings::Inputs {
            base: &self.cfg.deploy,
            explicit: &self.cfg.explicit,
            local: self.cfg.local.as_ref(),
            issue: Some(issue),
            templates_dir: self.cfg.templates.dir.as_deref(),
        };
        let mut req = match crate::settings::prepare(&inputs, spec, branch, &reporter) {
            Ok(req) => req,
            Err(e) => return deploy_failed(&ctx, e, issue, branch).await,
        };
        // the cap puts the least recently used bench to sleep: serve knows when each was used
        req.machine.cap.last_used = self.clock.snapshot();
        let stop = async {
            match cancel.wait_for(|c| *c != Cancel::No).await.map(|c| *c) {
                Ok(Cancel::Shutdown) | Err(_) => Stop::Shutdown,
                Ok(Cancel::Deadline) => Stop::Deadline,
                Ok(_) => Stop::Cancelled,
            }
        };
        // the messengers hear of failures that are not retried
        let finished = app::deploy::run(&ctx, &req, stop, |e| !app::deploy::is_passing(e)).await;
        let o = match finished {
            Finished::Stopped { stop, cleanup } => {
                self.metrics
                    .inc("benchctl_deploys_total", &[("result", "cancelled")]);
                return match stop {
                    Stop::Shutdown => Outcome::Abandoned(format!(
                        "deploy of {branch} stopped for shutdown: {cleanup}"
                    )),
                    Stop::Deadline => Outcome::Failed(format!(
                        "deploy of {branch} stopped: it ran past the job timeout of {} s \
                         (--job-timeout); {cleanup}",
                        self.cfg.job_timeout.as_secs()
                    )),
                    _ => Outcome::Done(format!(
                        "deploy of {branch} cancelled: the issue closed ({cleanup})"
                    )),
                };
            }
            Finished::Done(o) => o,
            Finished::Failed { error: e, .. } => {
                self.metrics
                    .inc("benchctl_deploys_total", &[("result", "failed")]);
                return failure(&e);
            }
        };
        self.metrics.inc(
            "benchctl_deploys_total",
            &[("result", &o.result().replace('-', "_"))],
        );
        let url = o.bench.url.clone().unwrap_or_default();
        match o.link.error() {
            Some(e) => Outcome::Failed(format!("bench up at {url} but not linked: {e}")),
            None => Outcome::Done(format!(
                "{issue} {} at {url} (commit {})",
                match o.action {
                    app::deploy::Action::Skipped => "keeps its newer bench",
                    action => action.as_str(),
                },
                crate::naming::short_commit(&o.bench.commit)
            )),
        }
    }

    async fn teardown(&self, issue: &str, reason: &str) -> Outcome {
        let reporter: SharedReporter = Arc::new(LogReporter {
            issue: issue.to_string(),
        });
        let tracker = self.job_tracker(&reporter);
        let ctx = self.context(tracker.as_ref(), &reporter);
        let field = &self.cfg.deploy.policy.field;
        let keep = app::teardown::Keep {
            link: !self.cfg.deploy.policy.link,
            volumes: false,
            hook_limit: self.cfg.deploy.bench.hook_limit,
        };
        match app::teardown::run(&ctx, issue, field, keep, reason).await {
            Ok(o) if o.removed_containers.is_empty() => {
                Outcome::Done(format!("{issue} has no bench; nothing to remove"))
            }
            Ok(o) => {
                self.metrics
                    .inc("benchctl_teardowns_total", &[("result", "ok")]);
                match o.link_error {
                    Some(e) => Outcome::Failed(format!("bench removed, field not cleared: {e}")),
                    None => Outcome::Done(format!(
                        "{issue}: removed {} container(s) ({reason})",
                        o.removed_containers.len()
                    )),
                }
            }
            Err(e) => {
                self.metrics
                    .inc("benchctl_teardowns_total", &[("result", "failed")]);
                Outcome::Retry(e.to_string())
            }
        }
    }

    async fn remove_branch(&self, issue: &str, repo: &str, branch: &str) -> Outcome {
        // the bench must be of this branch of this repository
        let location = self
            .cfg
            .repos
            .get(repo)
            .and_then(|l| crate::git::resolve_repo(Some(l)).ok())
            .map(|r| labels::value(&r.public()));
        match app::inspect::find_bench(&self.engine, issue).await {
            Ok(Some(c))
                if c.labels.get(labels::BRANCH).map(String::as_str) == Some(branch)
                    && location.is_some()
                    && c.labels.get(labels::REPO) == location.as_ref() =>
            {
                self.teardown(issue, &format!("branch {branch} was deleted"))
                    .await
            }
            Ok(Some(_)) => Outcome::Done(format!(
                "{issue}'s bench was deployed from another branch or repository than {repo}'s \
                 {branch}; left alone"
            )),
            Ok(None) => Outcome::Done(format!("{issue} has no bench; nothing to remove")),
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    /// What `benchctl gc` does, as serve's scheduled job (`--gc-interval`): closed issues'
    /// benches, benches past `--ttl`, leftovers, abandoned locks, unused images.
    async fn gc(&self) -> Outcome {
        let Some(schedule) = &self.cfg.gc else {
            return Outcome::Done("gc is off (--gc-interval 0)".into());
        };
        let reporter: SharedReporter = Arc::new(LogReporter {
            issue: "(gc)".into(),
        });
        let tracker = self.job_tracker(&reporter);
        let options = app::gc::GcOptions {
            last_used: self.clock.snapshot(),
            ..schedule.options.clone()
        };
        match app::gc::gc(
            &self.engine,
            tracker.as_ref(),
            &options,
            &reporter,
            self.cfg.lock,
        )
        .await
        {
            Ok(actions) => {
                for a in &actions {
                    self.metrics.inc(
                        "benchctl_gc_actions_total",
                        &[("action", a.action.as_str())],
                    );
                }
                Outcome::Done(match actions.len() {
                    0 => "nothing to clean up".to_string(),
                    n => format!(
                        "{n} clean-up action(s): {}",
                        actions
                            .iter()
                            .map(|a| format!("{} {}", a.action, a.target))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
            }
            Err(e) => Outcome::Retry(crate::secret::redact(&e.to_string())),
        }
    }

    async fn close(&self, issue: &str) -> Outcome {
        if let Err(o) = self.tracker("the close flow") {
            return o;
        }
        match self.status_of(issue).await {
            Ok(Some(s)) if self.is_closed(&s) => {
                self.teardown(issue, &format!("the issue was closed (`{s}`)"))
                    .await
            }
            Ok(s) => Outcome::Done(format!(
                "{issue} is not closed (status `{}`); its bench stays",
                s.unwrap_or_default()
            )),
            Err(o) => o,
        }
    }
}

/// A failed deploy as a job outcome: passing failures (git, engine, the issue's lock) are
/// retried, the others are not.
fn failure(e: &crate::Error) -> Outcome {
    let reason = crate::secret::redact(&e.to_string());
    if app::deploy::is_passing(e) {
        Outcome::Retry(reason)
    } else {
        Outcome::Failed(reason)
    }
}

/// A deploy that failed before it started (its settings): the messengers hear of it unless it
/// is retried.
async fn deploy_failed(ctx: &Context<'_>, e: crate::Error, issue: &str, branch: &str) -> Outcome {
    if !app::deploy::is_passing(&e) {
        ctx.notify_failed(issue, branch, &e).await;
    }
    failure(&e)
}

#[async_trait::async_trait]
impl Runner for Worker {
    async fn run(&self, job: &Job, cancel: watch::Receiver<Cancel>) -> Outcome {
        log(&format!(
            "[{}] job {} ({} from {}, attempt {})",
            job.issue(),
            job.seq,
            job.intent.kind(),
            job.source.name(),
            job.attempts + 1
        ));
        let work: std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + '_>> =
            match &job.intent {
                // a deploy watches `cancel` itself: it must clean up what it half-made
                Intent::Deploy {
                    issue,
                    repo,
                    branch,
                    ..
                } => return self.deploy(issue, repo, branch, cancel).await,
                Intent::Gc => Box::pin(self.gc()),
                Intent::Review {
                    issue,
                    candidates,
                    review,
                    repo,
                    branch,
                    title,
                    url,
                } => Box::pin(async move {
                    let keys: Vec<&str> = std::iter::once(issue.as_str())
                        .chain(candidates.iter().map(String::as_str))
                        .collect();
                    self.review(&keys, *review, repo, branch, title, url.as_deref())
                        .await
                }),
                Intent::Remove {
                    issue,
                    repo,
                    branch,
                } => Box::pin(self.remove_branch(issue, repo, branch)),
                Intent::Close { issue } => Box::pin(self.close(issue)),
            };
        let mut stop = cancel;
        // Other jobs are idempotent: on shutdown they are dropped and run again on the next start.
        tokio::select! {
            o = work => o,
            c = stop.wait_for(|c| matches!(c, Cancel::Shutdown | Cancel::Deadline)) => {
                match c.map(|c| *c) {
                    Ok(Cancel::Deadline) => Outcome::Failed(format!(
                        "stopped: it ran past the job timeout of {} s (--job-timeout)",
                        self.cfg.job_timeout.as_secs()
                    )),
                    _ => Outcome::Abandoned(
                        "stopped for shutdown; runs again on the next start".into(),
                    ),
                }
            }
        }
    }

    fn finished(&self, job: &Job, outcome: &Outcome) {
        let (result, text) = match outcome {
            Outcome::Done(t) => ("done", t),
            Outcome::Failed(t) => ("failed", t),
            Outcome::Retry(t) => ("retry", t),
            Outcome::Abandoned(t) => ("abandoned", t),
        };
        self.metrics.inc(
            "benchctl_jobs_total",
            &[("kind", job.intent.kind()), ("result", result)],
        );
        log(&format!(
            "[{}] job {} {result}: {text}",
            job.issue(),
            job.seq
        ));
    }

    async fn recover(&self, job: &Job) {
        if app::lock::release_if_mine(&self.engine, job.issue()).await {
            log(&format!(
                "[{}] released the lock job {} held",
                job.issue(),
                job.seq
            ));
        }
    }

    async fn confirms_close(&self, issue: &str) -> bool {
        matches!(self.status_of(issue).await, Ok(Some(s)) if self.is_closed(&s))
    }

    fn superseded(&self, job: &Job, by: &Job) {
        self.metrics.inc(
            "benchctl_jobs_total",
            &[("kind", job.intent.kind()), ("result", "superseded")],
        );
        log(&format!(
            "[{}] job {} ({}) superseded by job {} ({})",
            job.issue(),
            job.seq,
            job.intent.kind(),
            by.seq,
            by.intent.kind()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: Option<u16>) -> TrackerError {
        TrackerError {
            issue: "SRV-1".into(),
            action: "get".into(),
            status,
            messages: vec![],
        }
    }

    #[test]
    fn passing_tracker_failures_are_retried_the_rest_fail() {
        for passing in [None, Some(429), Some(500), Some(503), Some(409), Some(412)] {
            assert!(
                matches!(tracker_outcome(&refused(passing)), Outcome::Retry(_)),
                "{passing:?}"
            );
        }
        for final_ in [Some(400), Some(401), Some(403), Some(404)] {
            assert!(
                matches!(tracker_outcome(&refused(final_)), Outcome::Failed(_)),
                "{final_:?}"
            );
        }
    }

    #[test]
    fn a_failed_deploy_is_retried_only_when_it_may_pass() {
        let engine = crate::Error::Engine("cannot reach the Docker engine".into());
        assert!(matches!(failure(&engine), Outcome::Retry(_)));
        let build = crate::Error::Build {
            issue: "SRV-1".into(),
            branch: "b".into(),
            message: "COPY failed".into(),
        };
        assert!(matches!(failure(&build), Outcome::Failed(m) if m.contains("COPY failed")));
        let usage = crate::Error::usage("no Dockerfile");
        assert!(matches!(failure(&usage), Outcome::Failed(_)));
    }
}
