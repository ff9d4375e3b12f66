//! The deploy under the issue's lock, phase by phase: the branch's head, the no-op, the image
//! (reused, or fetched and built), newest-wins, the new bench started beside the old one,
//! readiness, the switch (fenced by the lock), and the link.

use super::plan::{self, BenchIdentity};
use super::ready::{wait_ready, Probe};
use super::{settings_of, Action, DeployOutcome};
use crate::app::inspect::{bench_address, benches, record_from, BenchRecord};
use crate::app::link::{self, LinkState};
use crate::app::lock::IssueLock;
use crate::app::request::DeployRequest;
use crate::app::teardown::remove_unused_images;
use crate::app::Context;

use crate::clock::now_unix;
use crate::engine::{labels, ContainerInfo, ContainerSpec, Engine, ImageInfo};
use crate::naming::{container_name, short_commit};
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;
use crate::{Error, Result};

/// Where a template's Dockerfile is put in the build context.
pub(super) const TEMPLATE_DOCKERFILE: &str = ".benchctl.Dockerfile";

/// The commit the branch points at in the repository (`git ls-remote`, in a blocking task).
pub(super) async fn branch_head(req: &DeployRequest) -> Result<Option<String>> {
    let repo = req.repo.clone();
    let branch = req.branch.clone();
    tokio::task::spawn_blocking(move || crate::git::remote_head(&repo, &branch))
        .await
        .map_err(|e| Error::Engine(format!("the ls-remote task failed: {e}")))?
}

/// The running bench `cur` as a deploy reports it (not yet linked).
pub(super) fn reported(cur: &ContainerInfo) -> BenchRecord {
    BenchRecord {
        state: None,
        age_seconds: None,
        linked: Some(false),
        ..record_from(cur, now_unix())
    }
}

/// What the image is built from: an image of the head that exists already, or a checkout.
pub(super) enum Source {
    Reuse { image: ImageInfo, commit_time: i64 },
    Checkout(crate::git::Fetched, crate::git::checkout::Checkout),
}

/// The image the bench runs.
pub(super) struct Image {
    pub(super) id: String,
    pub(super) tag: String,
    pub(super) commit: String,
    pub(super) commit_time: i64,
}

/// A new version started: its image, container, port, and the images it keeps in use.
pub(super) struct Started {
    pub(super) image: Image,
    pub(super) id: String,
    pub(super) port: u16,
    pub(super) images: Vec<String>,
}

pub(super) async fn deploy_locked(
    ctx: &Context<'_>,
    req: &DeployRequest,
    held: &IssueLock,
) -> Result<DeployOutcome> {
    let (engine, tracker, reporter) = (ctx.engine, ctx.tracker, ctx.reporter);
    let issue = req.issue.as_str();
    sweep_leftovers(engine, req, reporter).await;
    // before any build: a `RUN` step of the branch reaches no further than the operator says
    let remote = req.machine.engine_host.as_deref();
    crate::app::egress::ensure(req.bench.egress, remote, reporter).await;
    // a sleeping bench wakes first: a no-op deploy then finds it serving, a new commit
    // replaces a bench whose services (its database) run
    if crate::app::sleep::of(engine, issue).await?.is_some() {
        let timeout = req.bench.ready_timeout;
        let woke = crate::app::sleep::wake_held(ctx, issue, timeout, &req.machine.cap).await;
        if let Err(e) = woke {
            reporter.report(Event::Warn(format!("{e}; deploying anyway")));
        }
    }
    let final_name = container_name(issue);
    let settings = settings_of(req, engine);
    let existing = benches(engine, Some(issue)).await?;
    refuse_other_repository(req, &existing)?;
    let current = existing
        .iter()
        .find(|c| c.name == final_name && c.running)
        .cloned();

    // What the branch points at now, without fetching anything.
    let Some(head) = branch_head(req).await? else {
        return Err(Error::BranchNotFound {
            branch: req.branch.clone(),
            repo: req.repo.public(),
        });
    };

    if let (false, Some(cur)) = (req.policy.force, &current) {
        if plan::serves(cur, &head, &settings) {
            return Ok(unchanged(req, cur, &head, tracker, reporter).await);
        }
    }

    // Something will be started (observers hear of the commit): can it be, here?
    *req.run.working_on.lock().unwrap_or_else(|p| p.into_inner()) = Some(head.clone());
    reporter.report(Event::Deploying {
        commit: head.clone(),
    });
    engine.benches.check_can_run().await?;
    if req.bench.stack.is_some() {
        engine.stacks.supported()?;
    }

    let source = source(req, engine, &head, reporter).await?;
    let (commit, commit_time) = match &source {
        Source::Reuse { commit_time, .. } => (head.clone(), *commit_time),
        Source::Checkout(f, _) => (f.commit.clone(), f.time),
    };

    // Newest wins: an older commit never replaces a newer one (unless --force).
    if let (false, Some(cur)) = (req.policy.force, &current) {
        if plan::runs_newer(cur, commit_time) {
            let bench = reported(cur);
            let reason = format!(
                "{issue} already runs commit {} which is newer than {}; not replacing it \
                 (--force deploys the older one anyway)",
                short_commit(&bench.commit),
                short_commit(&commit)
            );
            reporter.report(Event::Warn(reason.clone()));
            return Ok(DeployOutcome::new(
                bench,
                Action::Skipped,
                LinkState::Skipped(reason),
            ));
        }
    }

    // The new version starts beside the current bench (a swarm service is updated in place).
    let replaces = existing.iter().find(|c| c.name == final_name);
    // a bench that did not run before counts against the cap (a redeploy replaces one)
    let need = req.bench.limits.memory_bytes
        * req
            .bench
            .stack
            .as_ref()
            .map_or(1, |s| s.project.services.len().max(1) as i64);
    let fresh = current.is_none();
    let room = || async {
        match fresh {
            true => {
                let (cap, by) = (&req.machine.cap, &req.run.deploy_id);
                crate::app::cap::make_room(engine, cap, issue, need, by, ctx.lock, reporter).await
            }
            false => Ok(crate::app::cap::Room::none()),
        }
    };
    let started = match &req.bench.stack {
        Some(stack) => {
            let Source::Checkout(_, checkout) = source else {
                return Err(Error::Engine(
                    "a multi-service bench is always fetched".into(),
                ));
            };
            let src = checkout.path().join("src");
            let ctx = super::stack::StackCtx {
                req,
                engine,
                stack,
                src: &src,
                settings: &settings,
                replaces: replaces.map(|c| c.id.clone()),
                reporter,
                builder: Default::default(),
                classic_build: tokio::sync::Semaphore::new(1),
            };
            let prepared = super::stack::prepare(&ctx, &checkout, &commit, commit_time).await?;
            let room = room().await?;
            let s = super::stack::start(&ctx, prepared, commit, commit_time).await;
            room.release(engine, reporter).await;
            s?
        }
        None => {
            let image =
                super::image::image(req, engine, source, commit, commit_time, reporter).await?;
            let room = room().await?;
            let s = start_single(req, engine, image, &settings, replaces, reporter).await;
            room.release(engine, reporter).await;
            s?
        }
    };
    let Started {
        image,
        id,
        port,
        images,
    } = started;
    let url = ready(
        req,
        engine,
        &id,
        port,
        &image.commit,
        current.is_some(),
        reporter,
    )
    .await?;

    let olds: Vec<_> = existing.iter().filter(|c| c.id != id).collect();
    if let Some(router) = &req.bench.router {
        if olds.iter().any(|c| c.running) && !router.drain.is_zero() {
            reporter.report(Event::Step(format!(
                "keeping the previous bench {}s more, until Traefik routes to the new one \
                 (--traefik-drain)",
                router.drain.as_secs()
            )));
            tokio::time::sleep(router.drain).await;
        }
    }

    // Fencing: only the lock's holder may switch benches.
    if !held.still_held(engine).await? {
        engine.benches.discard(&id).await?;
        return Err(Error::Engine(format!(
            "the lock of {issue} was broken while this deploy ran (it outlived --lock-lease); \
             the new version was removed and the running bench left as it was"
        )));
    }
    for old in olds {
        engine.benches.remove(&old.id).await?;
        reporter.report(Event::Done(format!(
            "removed the previous bench {}",
            old.name
        )));
    }
    engine.benches.promote(&id, &final_name).await?;
    crate::app::sleep::forget(engine, issue).await?;
    remove_unused_images(engine, issue, &images, reporter).await;

    let bench = BenchRecord {
        services: Vec::new(),
        resources: None,
        pinned: false,
        pinned_until: None,
        sleeping_since: None,
        memory_bytes: Some(req.bench.limits.memory_bytes),
        issue: issue.to_string(),
        branch: req.branch.clone(),
        commit: image.commit,
        image: image.tag,
        container: final_name,
        url: Some(url.clone()),
        linked: Some(false),
        state: None,
        age_seconds: None,
    };
    let link = match link::link_target(req.policy.link, tracker, issue, &req.policy.field) {
        Err(why) => LinkState::Skipped(why),
        Ok(field) => field.set(&url, reporter).await,
    };
    Ok(DeployOutcome::new(bench, Action::Deployed, link))
}

/// Starts a single-container bench's new version from `image`.
async fn start_single(
    req: &DeployRequest,
    engine: &Engine,
    image: Image,
    settings: &str,
    replaces: Option<&ContainerInfo>,
    reporter: &SharedReporter,
) -> Result<Started> {
    let issue = req.issue.as_str();
    let exposed = match req.bench.port {
        Some(_) => Vec::new(),
        None => {
            engine
                .images
                .inspect(&image.id)
                .await?
                .ok_or_else(|| {
                    Error::Engine(format!(
                        "image {} vanished right after its build",
                        image.tag
                    ))
                })?
                .exposed_ports
        }
    };
    let port = plan::port(req.bench.port, &exposed, issue)?;

    let identity = BenchIdentity {
        commit: &image.commit,
        commit_time: image.commit_time,
        port,
        settings,
        deployed_at: now_unix(),
    };
    let spec = ContainerSpec {
        name: container_name(issue),
        image: image.tag.clone(),
        labels: plan::bench_labels(req, &identity, engine.stacks.kind())?,
        container_port: port,
        bind: req.bench.bind.clone(),
        limits: req.bench.limits.clone(),
        env: req
            .bench
            .env
            .iter()
            .map(|e| format!("{}={}", e.name, e.value()))
            .collect(),
        network: req.bench.router.as_ref().map(|r| r.network.clone()),
        own_network: Some((
            super::stack_plan::network(issue),
            super::stack_plan::stack_labels(
                issue,
                &req.repo.public(),
                &req.run.deploy_id,
                engine.stacks.kind(),
            ),
        )),
        replaces: replaces.map(|c| c.id.clone()),
        health_path: req.bench.health_path.clone(),
        ready_timeout: req.bench.ready_timeout,
        cap_add: req.bench.cap_add.clone(),
    };
    reporter.report(Event::Step(format!(
        "starting the new bench of {issue} (port {port})"
    )));
    let id = engine.benches.start(&spec).await?;
    let images = vec![image.id.clone()];
    Ok(Started {
        image,
        id,
        port,
        images,
    })
}

/// The outcome of a no-op redeploy: nothing rebuilt or restarted; the link re-set only if the
/// field holds something else.
pub(super) async fn unchanged(
    req: &DeployRequest,
    cur: &ContainerInfo,
    head: &str,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
) -> DeployOutcome {
    let issue = req.issue.as_str();
    let bench = reported(cur);
    reporter.report(Event::Done(format!(
        "{issue} already serves commit {} with these settings: nothing to do",
        short_commit(head)
    )));
    let link = match (
        link::link_target(req.policy.link, tracker, issue, &req.policy.field),
        bench.url.clone(),
    ) {
        (Err(why), _) => LinkState::Skipped(why),
        (Ok(_), None) => LinkState::Failed("the bench publishes no port".into()),
        (Ok(field), Some(url)) => field.ensure(&url, reporter).await,
    };
    DeployOutcome::new(bench, Action::Unchanged, link)
}

/// An issue's bench belongs to the repository it was deployed from: a branch of another
/// repository carrying the same key does not replace it.
fn refuse_other_repository(
    req: &DeployRequest,
    existing: &[crate::engine::ContainerInfo],
) -> Result<()> {
    let ours = labels::value(&req.repo.public());
    let other = existing
        .iter()
        .find_map(|c| c.labels.get(labels::REPO).filter(|r| **r != ours));
    match other {
        None => Ok(()),
        Some(theirs) => Err(Error::usage(format!(
            "{}'s bench was deployed from the repository {theirs}, and branch `{}` is of {ours}: \
             a branch of another repository does not replace it; if it should go, `benchctl \
             teardown {}` first",
            req.issue, req.branch, req.issue
        ))),
    }
}

/// Removes what killed deploys left that no bench or label lookup reaches otherwise: this
/// issue's build-step containers (its lock is held: none is a live deploy's) and every
/// checkout no live process holds. Failures only warn.
async fn sweep_leftovers(engine: &Engine, req: &DeployRequest, reporter: &SharedReporter) {
    let issue = req.issue.as_str();
    match engine
        .images
        .remove_build_steps(&labels::issue_filter(issue))
        .await
    {
        Ok(steps) => {
            for name in steps {
                reporter.report(Event::Info(format!(
                    "removed {name}, a build step an interrupted deploy of {issue} left"
                )));
            }
        }
        Err(e) => reporter.report(Event::Warn(format!(
            "could not look for build steps an interrupted deploy of {issue} left: {e}"
        ))),
    }
    // a one-off hook's container of a killed deploy (under the lock, none is this one's)
    if let Ok(hooks) = engine
        .stacks
        .remove_hooks(&labels::issue_filter(issue))
        .await
    {
        for name in hooks {
            reporter.report(Event::Info(format!(
                "removed {name}, a hook container an interrupted deploy of {issue} left"
            )));
        }
    }
    let cache = req.machine.cache_dir.clone();
    match tokio::task::spawn_blocking(move || crate::git::checkout::sweep(&cache, false)).await {
        Ok(Ok(dirs)) => {
            for d in dirs {
                reporter.report(Event::Info(format!(
                    "removed {}, the checkout of a deploy that was killed",
                    d.display()
                )));
            }
        }
        Ok(Err(e)) => reporter.report(Event::Warn(format!(
            "could not sweep old checkouts in {}: {e}",
            req.machine.cache_dir.display()
        ))),
        Err(_) => {}
    }
}

/// An image of the head built with these settings exists (no fetch, no build), else the
/// branch fetched into a fresh checkout.
async fn source(
    req: &DeployRequest,
    engine: &Engine,
    head: &str,
    reporter: &SharedReporter,
) -> Result<Source> {
    let issue = req.issue.as_str();
    // a multi-service bench has several images: it is always fetched
    if !req.policy.force && req.bench.stack.is_none() {
        let tag = plan::image_tag(issue, head, &req.build_hash());
        if let Some((image, commit_time)) = plan::reusable(engine.images.inspect(&tag).await?, head)
        {
            return Ok(Source::Reuse { image, commit_time });
        }
    }
    reporter.report(Event::Step(format!(
        "fetching branch `{}` of {} for {issue}",
        req.branch, req.repo
    )));
    let checkout =
        crate::git::checkout::Checkout::create(&req.machine.cache_dir, issue).map_err(|e| {
            Error::Engine(format!(
                "cannot create a checkout in {}: {e}; check that the cache directory \
                 (--cache-dir, BENCHCTL_CACHE_DIR) is writable",
                req.machine.cache_dir.display()
            ))
        })?;
    let fetched = {
        let repo = req.repo.clone();
        let branch = req.branch.clone();
        let dest = checkout.path().to_path_buf();
        let cache = req.machine.cache_dir.clone();
        let rep = reporter.clone();
        // several build contexts: the whole tree (each context's .dockerignore applies later)
        let dockerfile = match req.bench.stack {
            Some(_) => String::new(),
            None => crate::build::dockerignore::go_clean(&req.bench.dockerfile),
        };
        tokio::task::spawn_blocking(move || {
            crate::git::fetch_branch(&repo, &branch, &cache, &dest, &dockerfile, &rep)
        })
        .await
        .map_err(|e| Error::Engine(format!("the fetch task failed: {e}")))??
    };
    reporter.report(Event::Done(format!(
        "commit {}",
        short_commit(&fetched.commit)
    )));
    Ok(Source::Checkout(fetched, checkout))
}

/// Waits for the new bench `id` to answer; returns its address. A bench that never does is
/// discarded (the running one stays) and the error carries its last log lines.
async fn ready(
    req: &DeployRequest,
    engine: &Engine,
    id: &str,
    port: u16,
    commit: &str,
    kept_old: bool,
    reporter: &SharedReporter,
) -> Result<String> {
    let issue = req.issue.as_str();
    reporter.report(Event::Step(format!(
        "waiting for {issue} to answer (up to {} s)",
        req.bench.ready_timeout.as_secs()
    )));
    let probe = match &req.bench.router {
        Some(_) => Probe::Direct(port),
        None => Probe::Published(plan::probe_host(
            &req.bench.bind,
            req.machine.engine_host.as_deref(),
        )),
    };
    let waited = wait_ready(
        engine,
        id,
        &req.run.deploy_id,
        &probe,
        &req.bench.health_path,
        req.bench.ready_timeout,
    )
    .await;
    let (host_port, node) = match waited {
        Ok(p) => p,
        Err(reason) => {
            let logs = engine.benches.logs_tail(id, 20).await.unwrap_or_default();
            engine.benches.discard(id).await?;
            return Err(Error::NotReady {
                issue: issue.to_string(),
                reason,
                logs,
                kept_old,
            });
        }
    };
    req.run
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let url = bench_address(
        node.as_deref().unwrap_or(&req.bench.public_host),
        host_port,
        req.bench.url_template.as_deref(),
        issue,
        &req.branch,
        commit,
    );
    reporter.report(Event::Done(format!("{issue} answers at {url}")));
    Ok(url)
}
