//! The deploy use case, shared by `benchctl deploy` and serve's deploy jobs: [`run`] races the
//! deploy against a stop (signal, shutdown, cancel), cleans up after a stop, and tells the
//! messengers. [`deploy`] is the deploy itself: a read-only no-op check, then the issue's
//! lock, the phases (`phases.rs`, deciding with `plan.rs`), and the result recorded.

pub mod content;
pub mod hooks;
mod image;
mod phases;
pub mod plan;
pub(crate) mod ready;
mod stack;
pub mod stack_extras;
pub mod stack_plan;
mod stack_shares;

use crate::app::inspect::{benches, BenchRecord};
use crate::app::link::{self, LinkState};
use crate::app::lock::IssueLock;
use crate::app::record::LastDeploy;
use crate::app::request::DeployRequest;
use crate::app::Context;
use crate::clock::now_unix;
use crate::engine::{labels, Engine};
use crate::feedback::observer::End;
use crate::naming::{container_name, short_commit};
use crate::notify::Message;
use crate::output::Event;
use crate::{Error, Result};
use serde::Serialize;
use sha2::Digest;
use std::future::Future;

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new bench runs (first deploy or replacement).
    Deployed,
    /// The running bench already serves this commit with these settings: nothing changed.
    Unchanged,
    /// A newer commit is already deployed: this older one did not replace it.
    Skipped,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deployed => "deployed",
            Action::Unchanged => "unchanged",
            Action::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeployOutcome {
    pub bench: BenchRecord,
    pub action: Action,
    pub link: LinkState,
    /// What the repository's code host was told (none: no code host, or nothing to tell).
    pub code_host: Option<crate::feedback::Report>,
    /// The issue's deploy before this one failed (this one brings the bench back).
    pub recovered: bool,
}

impl DeployOutcome {
    /// The outcome; the bench record says whether it is linked.
    pub fn new(mut bench: BenchRecord, action: Action, link: LinkState) -> DeployOutcome {
        bench.linked = Some(link.is_linked());
        DeployOutcome {
            bench,
            action,
            link,
            code_host: None,
            recovered: false,
        }
    }

    /// The deploy's result in one word: the action, or `not-linked` when linking failed.
    pub fn result(&self) -> &'static str {
        match self.link {
            LinkState::Failed(_) => "not-linked",
            _ => self.action.as_str(),
        }
    }
}

/// Why a deploy stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A signal (`SIGINT`, `SIGTERM`) and the exit code the process ends with.
    Signal { name: &'static str, code: i32 },
    /// The service shuts down (its job runs again on the next start).
    Shutdown,
    /// The issue was closed meanwhile.
    Cancelled,
    /// The service's job ran past its deadline (`serve --job-timeout`).
    Deadline,
}

/// How a deploy ended.
#[derive(Debug)]
// one value per deploy, moved once: boxing the outcome would buy nothing
#[allow(clippy::large_enum_variant)]
pub enum Finished {
    /// It ran to its end.
    Done(DeployOutcome),
    /// It failed; what the code host was told of it, when there is one.
    Failed {
        error: Error,
        code_host: Option<crate::feedback::Report>,
    },
    /// It was stopped; what the clean-up did.
    Stopped { stop: Stop, cleanup: String },
}

/// Failures that may pass (git, the engine, the issue's lock): serve retries them.
pub fn is_passing(e: &Error) -> bool {
    matches!(
        e,
        Error::Locked { .. } | Error::Engine(_) | Error::Git { .. }
    )
}

/// The deploy as the front ends run it: `req` resolved and checked, raced against `stop`
/// (what it half-made is removed when `stop` wins); the messengers hear of a new bench, and
/// of a failure when `tell_failure` says so.
pub async fn run(
    ctx: &Context<'_>,
    req: &DeployRequest,
    stop: impl Future<Output = Stop>,
    tell_failure: fn(&Error) -> bool,
) -> Finished {
    // the code host observes the deploy's events: pending once it works on a commit
    let (observed, watch) = crate::feedback::observer::watch(
        ctx.code_hosts,
        &req.repo.public(),
        &req.issue,
        &req.branch,
        ctx.reporter,
    );
    let linking = Context {
        tracker: ctx.tracker.filter(|_| req.policy.link),
        reporter: &observed,
        ..*ctx
    };
    let mut result = tokio::select! {
        r = deploy(&linking, req) => r,
        stop = stop => {
            let cleanup = recover_interrupted(req, ctx.engine).await;
            watch
                .finish(End::Failed { reason: format!("the deploy was stopped; {cleanup}") })
                .await;
            return Finished::Stopped { stop, cleanup };
        }
    };
    let end = match &result {
        Ok(o) => End::Up {
            url: o.bench.url.clone(),
            note: match o.action {
                Action::Skipped => format!(
                    "not deployed: {} runs the newer commit {}",
                    req.issue,
                    short_commit(&o.bench.commit)
                ),
                _ => format!("the bench of {} is up", req.issue),
            },
        },
        Err(e) => End::Failed {
            reason: crate::secret::redact(&e.to_string()),
        },
    };
    let commit = req
        .run
        .working_on
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut report = watch.finish(end).await;
    if let Ok(o) = &mut result {
        o.code_host = report.take();
    }
    if let Some(tracker) = linking.tracker {
        comment(ctx, tracker, req, &result, commit, tell_failure).await;
    }
    match &result {
        Ok(o) if o.action == Action::Deployed => {
            ctx.notify(&Message::Up {
                issue: req.issue.clone(),
                url: o.bench.url.clone().unwrap_or_default(),
                branch: req.branch.clone(),
                commit: o.bench.commit.clone(),
            })
            .await
        }
        Err(e) if tell_failure(e) => ctx.notify_failed(&req.issue, &req.branch, e).await,
        _ => {}
    }
    match result {
        Ok(o) => Finished::Done(o),
        Err(error) => Finished::Failed {
            error,
            code_host: report,
        },
    }
}

/// Tells the issue, as a Tracker comment, of a failed deploy (with the reason, redacted and cut
/// to its first lines) and of the success that brings the bench back; with
/// `--tracker-comment all`, of every new bench too. A comment that cannot be added is a warning.
async fn comment(
    ctx: &Context<'_>,
    tracker: &crate::tracker::TrackerClient,
    req: &DeployRequest,
    result: &Result<DeployOutcome>,
    commit: Option<String>,
    tell_failure: fn(&Error) -> bool,
) {
    use crate::app::request::TrackerComments;
    let mode = req.policy.comments;
    let templates = ctx.notifier.templates();
    let text = match (result, mode) {
        (_, TrackerComments::Off) => return,
        (Err(e), _) if tell_failure(e) => {
            let reason = crate::secret::redact(&e.to_string());
            let mut lines: Vec<&str> = reason.lines().take(20).collect();
            if reason.lines().count() > 20 {
                lines.push("...");
            }
            // no code fence of the reason's own may close the comment's
            let reason: String = lines
                .join("\n")
                .replace("```", "` ` `")
                .chars()
                .take(3000)
                .collect();
            let commit = commit.as_deref().map(short_commit).unwrap_or("-");
            templates.render(
                "tracker/deploy-failed.txt",
                &[
                    ("issue", &req.issue),
                    ("branch", &req.branch),
                    ("commit", commit),
                    ("reason", &reason),
                ],
            )
        }
        (Ok(o), _)
            if o.action == Action::Deployed && (o.recovered || mode == TrackerComments::All) =>
        {
            templates.render(
                "tracker/deploy-up.txt",
                &[
                    ("issue", &req.issue),
                    ("what", if o.recovered { "back" } else { "up" }),
                    ("url", o.bench.url.as_deref().unwrap_or("")),
                    ("branch", &req.branch),
                    ("commit", short_commit(&o.bench.commit)),
                ],
            )
        }
        _ => return,
    };
    if let Err(e) = tracker.add_comment(&req.issue, &text).await {
        ctx.reporter.report(Event::Warn(format!(
            "could not comment on {} in the Tracker: {e}",
            req.issue
        )));
    }
}

/// The settings hash of a bench of `req` on `engine` (what the engine adds, e.g. a swarm's
/// publish mode, changes it too).
fn settings_of(req: &DeployRequest, engine: &Engine) -> String {
    let shape = engine.benches.shape();
    if shape.is_empty() {
        return req.settings_hash();
    }
    let text = format!("{}|{shape}", req.settings_hash());
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// The common no-op, decided by reading only (no lock, no write): nobody holds the issue's lock,
/// its one bench runs healthy with the branch's head and these settings, and the Tracker field
/// already holds its address. Anything else (`None`) goes the locked way, which may write.
async fn unchanged_at_a_glance(
    ctx: &Context<'_>,
    req: &DeployRequest,
) -> Result<Option<DeployOutcome>> {
    let (engine, tracker, reporter) = (ctx.engine, ctx.tracker, ctx.reporter);
    let issue = req.issue.as_str();
    if req.policy.force {
        return Ok(None);
    }
    // ask the git server and the engine at the same time (the head read with the branch's
    // config a moment ago is asked for only once)
    let head = async {
        match &req.run.head_hint {
            Some(h) => Ok(Some(h.clone())),
            None => phases::branch_head(req).await,
        }
    };
    let state = async {
        let locked = engine
            .markers
            .get(&crate::app::lock::lock_name(issue))
            .await?
            .is_some();
        Ok::<_, Error>((locked, benches(engine, Some(issue)).await?))
    };
    let (head, state) = tokio::join!(head, state);
    let (locked, existing) = state?;
    // a failing ls-remote is reported by the locked way
    let Some(head) = head.ok().flatten() else {
        return Ok(None);
    };
    let [cur] = existing.as_slice() else {
        return Ok(None);
    };
    if locked
        || cur.name != container_name(issue)
        || !plan::serves(cur, &head, &settings_of(req, engine))
    {
        return Ok(None);
    }
    let bench = phases::reported(cur);
    let Some(url) = bench.url.clone() else {
        return Ok(None);
    };
    let link = match link::link_target(req.policy.link, tracker, issue, &req.policy.field) {
        Err(why) => LinkState::Skipped(why),
        Ok(field) if field.holds(&url).await => LinkState::Linked,
        Ok(_) => return Ok(None),
    };
    reporter.report(Event::Done(format!(
        "{issue} already serves commit {} with these settings: nothing to do",
        short_commit(&bench.commit)
    )));
    Ok(Some(DeployOutcome::new(bench, Action::Unchanged, link)))
}

/// Deploys under the issue's lock: one deploy or teardown of an issue at a time. The result
/// is recorded for `status`.
async fn deploy(ctx: &Context<'_>, req: &DeployRequest) -> Result<DeployOutcome> {
    if let Some(outcome) = unchanged_at_a_glance(ctx, req).await? {
        return Ok(outcome);
    }
    let (engine, reporter) = (ctx.engine, ctx.reporter);
    let purpose = format!("deploy of {}", req.branch);
    let held = IssueLock::acquire(
        engine,
        &req.issue,
        &purpose,
        Some(&req.repo.public()),
        ctx.lock,
        reporter,
    )
    .await?;
    let previous = LastDeploy::load(engine, &req.issue).await.ok().flatten();
    let mut result = checked_deploy(ctx, req, &held).await;
    if let Ok(o) = &mut result {
        o.recovered = previous.is_some_and(|p| p.result == "failed");
    }
    if result.is_err() {
        for done in remove_benchless_stack(engine, req).await {
            reporter.report(Event::Info(done));
        }
    }
    let (outcome, commit, message) = match &result {
        Ok(o) => (
            o.result(),
            o.bench.commit.clone(),
            o.link.error().unwrap_or_default().to_string(),
        ),
        Err(e) => (
            "failed",
            req.run
                .working_on
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_default(),
            e.to_string(),
        ),
    };
    let record = LastDeploy {
        result: outcome.to_string(),
        at: now_unix(),
        branch: req.branch.clone(),
        repo: req.repo.public(),
        commit,
        message: crate::secret::redact(&message),
        earlier: Vec::new(),
    };
    if let Err(e) = record.store(engine, &req.issue).await {
        reporter.report(Event::Warn(format!(
            "could not record the result of this deploy: {e}"
        )));
    }
    held.release_or_warn(engine, reporter).await;
    result
}

/// Runs the deploy while one `GET /v3/issues/<KEY>` checks, concurrently, that the token is
/// good and the issue exists: a refusal (401, 403, 404) stops the deploy at once, removes what
/// it started, and is a configuration error (exit 2). A Tracker that cannot be reached only
/// warns: linking will tell.
async fn checked_deploy(
    ctx: &Context<'_>,
    req: &DeployRequest,
    held: &IssueLock,
) -> Result<DeployOutcome> {
    let (engine, reporter) = (ctx.engine, ctx.reporter);
    let check = async {
        match (req.policy.link, ctx.tracker) {
            (true, Some(t)) => t.get_issue(&req.issue).await.map(|_| ()),
            _ => Ok(()),
        }
    };
    let work = phases::deploy_locked(ctx, req, held);
    tokio::pin!(check, work);
    let mut checked = false;
    loop {
        tokio::select! {
            r = &mut work => return r,
            c = &mut check, if !checked => {
                checked = true;
                match c {
                    Ok(()) => {}
                    Err(e) if e.is_usage() => {
                        let ready = req.run.ready.load(std::sync::atomic::Ordering::SeqCst);
                        remove_candidates(engine, &req.issue, &req.run.deploy_id, ready).await;
                        return Err(Error::Tracker(e));
                    }
                    Err(e) => reporter.report(Event::Warn(format!(
                        "could not check {} in the Tracker ({e}); deploying anyway",
                        req.issue
                    ))),
                }
            }
        }
    }
}

/// After a deploy was interrupted (its future dropped): removes what it half-created and
/// keeps the previous bench; if the new container was ready and the previous bench already
/// removed, the new one stays as the bench. Releases the lock when this process holds it.
/// Returns what was done.
pub async fn recover_interrupted(req: &DeployRequest, engine: &Engine) -> String {
    let ready = req.run.ready.load(std::sync::atomic::Ordering::SeqCst);
    let issue = req.issue.as_str();
    let mut done = remove_candidates(engine, issue, &req.run.deploy_id, ready).await;
    done.extend(remove_benchless_stack(engine, req).await);
    engine.images.settle().await;
    let ours = [format!("{}={}", labels::DEPLOY_ID, req.run.deploy_id)];
    if let Ok(steps) = engine.images.remove_build_steps(&ours).await {
        done.extend(
            steps
                .into_iter()
                .map(|n| format!("removed the build step's container {n}")),
        );
    }
    if crate::app::lock::release_if_mine(engine, issue).await {
        done.push("released the lock".to_string());
    }
    if crate::app::cap::release_if_held_by(engine, &req.run.deploy_id).await {
        done.push("released the cap's lock".to_string());
    }
    if done.is_empty() {
        "nothing was left behind".to_string()
    } else {
        done.join("; ")
    }
}

/// After a multi-service deploy failed or stopped: when the issue has no bench (a first
/// deploy), its other services, hook containers and network are removed, and its volumes kept
/// for the next deploy; the one-off hook containers of this deploy go in any case. Says what
/// it did.
async fn remove_benchless_stack(engine: &Engine, req: &DeployRequest) -> Vec<String> {
    let mut done = Vec::new();
    if req.bench.stack.is_none() {
        return done;
    }
    let issue = req.issue.as_str();
    let mut ours = labels::issue_filter(issue);
    ours.push(format!("{}={}", labels::DEPLOY_ID, req.run.deploy_id));
    if let Ok(hooks) = engine.stacks.remove_hooks(&ours).await {
        done.extend(
            hooks
                .into_iter()
                .map(|h| format!("removed hook container {h}")),
        );
    }
    if !matches!(benches(engine, Some(issue)).await, Ok(b) if b.is_empty()) {
        return done;
    }
    let quiet: crate::output::SharedReporter = std::sync::Arc::new(crate::output::Silent);
    let services = crate::app::inspect::service_containers(engine, Some(issue)).await;
    let removed = match services {
        Ok(s) => crate::app::teardown::remove_stack_parts(engine, issue, &s, true, &quiet).await,
        Err(e) => Err(e),
    };
    match removed {
        Ok(names) if !names.is_empty() => done.push(format!(
            "{issue} has no bench: removed its services {} and its network (its volumes stay \
             for the next deploy)",
            names.join(", ")
        )),
        Ok(_) => {}
        Err(e) => done.push(format!(
            "{issue} has no bench, but its services could not be removed: {e} (`benchctl \
             teardown {issue}` removes them)"
        )),
    }
    done
}

/// Removes what the deploy `deploy_id` created, unless it was `ready` and the previous bench is
/// already gone (then its new container stays as the bench). Says what it did.
async fn remove_candidates(
    engine: &Engine,
    issue: &str,
    deploy_id: &str,
    ready: bool,
) -> Vec<String> {
    let mut done = Vec::new();
    if let Ok(all) = benches(engine, Some(issue)).await {
        let (ours, others): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|c| c.labels.get(labels::DEPLOY_ID).map(String::as_str) == Some(deploy_id));
        for c in &ours {
            if ready && others.is_empty() && c.running {
                let final_name = container_name(issue);
                if c.name != final_name && engine.benches.promote(&c.id, &final_name).await.is_ok()
                {
                    done.push(format!("kept the new bench as {final_name}"));
                }
            } else if engine.benches.discard(&c.id).await.is_ok() {
                done.push(format!("removed the unfinished container {}", c.name));
            }
        }
        if !others.is_empty() {
            done.push("the previous bench keeps running".to_string());
        }
        // a create the engine was still finishing when the deploy stopped shows up a moment
        // later: look again for a few seconds and remove what appears
        let kept = ready && others.is_empty();
        if !kept && !ours.is_empty() {
            for _ in 0..8 {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                let Ok(again) = benches(engine, Some(issue)).await else {
                    break;
                };
                for c in again.iter().filter(|c| {
                    c.labels.get(labels::DEPLOY_ID).map(String::as_str) == Some(deploy_id)
                }) {
                    let _ = engine.benches.discard(&c.id).await;
                }
            }
        }
    }
    done
}
