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
use crate::build as image;
use crate::clock::now_unix;
use crate::engine::BuildSpec;
use crate::engine::{labels, ContainerInfo, ContainerSpec, Engine, ImageInfo};
use crate::naming::{container_name, short_commit};
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;
use crate::{Error, Result};

/// Where a template's Dockerfile is put in the build context.
const TEMPLATE_DOCKERFILE: &str = ".benchctl.Dockerfile";

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
enum Source {
    Reuse { image: ImageInfo, commit_time: i64 },
    Checkout(crate::git::Fetched, crate::git::checkout::Checkout),
}

/// The image the bench runs.
struct Image {
    id: String,
    tag: String,
    commit: String,
    commit_time: i64,
}

pub(super) async fn deploy_locked(
    ctx: &Context<'_>,
    req: &DeployRequest,
    held: &IssueLock,
) -> Result<DeployOutcome> {
    let (engine, tracker, reporter) = (ctx.engine, ctx.tracker, ctx.reporter);
    let issue = req.issue.as_str();
    sweep_leftovers(engine, req, reporter).await;
    let final_name = container_name(issue);
    let settings = settings_of(req, engine);
    let existing = benches(engine, Some(issue)).await?;
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

    // Something will be started: can it be, here?
    engine.benches.check_can_run().await?;

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

    let image = image(req, engine, source, commit, commit_time, reporter).await?;
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

    // The new version starts beside the current bench (a swarm service is updated in place).
    let replaces = existing.iter().find(|c| c.name == final_name);
    let identity = BenchIdentity {
        commit: &image.commit,
        commit_time: image.commit_time,
        port,
        settings: &settings,
        deployed_at: now_unix(),
    };
    let spec = ContainerSpec {
        name: final_name.clone(),
        image: image.tag.clone(),
        labels: plan::bench_labels(req, &identity)?,
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
        replaces: replaces.map(|c| c.id.clone()),
        health_path: req.bench.health_path.clone(),
        ready_timeout: req.bench.ready_timeout,
        cap_add: req.bench.cap_add.clone(),
    };
    reporter.report(Event::Step(format!(
        "starting the new bench of {issue} (port {port})"
    )));
    let id = engine.benches.start(&spec).await?;
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

    // Fencing: only the lock's holder may switch benches.
    if !held.still_held(engine).await? {
        engine.benches.discard(&id).await?;
        return Err(Error::Engine(format!(
            "the lock of {issue} was broken while this deploy ran (it outlived --lock-lease); \
             the new version was removed and the running bench left as it was"
        )));
    }
    for old in existing.iter().filter(|c| c.id != id) {
        engine.benches.remove(&old.id).await?;
        reporter.report(Event::Done(format!(
            "removed the previous bench {}",
            old.name
        )));
    }
    engine.benches.promote(&id, &final_name).await?;
    remove_unused_images(engine, issue, Some(&image.id), reporter).await;

    let bench = BenchRecord {
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
    if !req.policy.force {
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
        let dockerfile = crate::build::dockerignore::go_clean(&req.bench.dockerfile);
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

/// The image: the reused one, or built from the checkout (with the chosen template, if any).
async fn image(
    req: &DeployRequest,
    engine: &Engine,
    source: Source,
    commit: String,
    commit_time: i64,
    reporter: &SharedReporter,
) -> Result<Image> {
    let issue = req.issue.as_str();
    let tag = plan::image_tag(issue, &commit, &req.build_hash());
    let mut labels = plan::base_labels(issue, &commit);
    labels.insert(labels::COMMIT_TIME.to_string(), commit_time.to_string());
    let mut owner = labels::issue_labels(issue);
    owner.insert(labels::DEPLOY_ID.to_string(), req.run.deploy_id.clone());
    owner.insert(labels::REPO.to_string(), labels::value(&req.repo.public()));
    let (id, found) = match source {
        Source::Reuse { image, .. } => {
            reporter.report(Event::Done(format!(
                "image {tag} of commit {} exists: nothing to build",
                short_commit(&commit)
            )));
            (image.id, Some(image.labels))
        }
        Source::Checkout(_, checkout) => {
            let src = checkout.path().join("src");
            let dockerfile = match &req.bench.template {
                Some(t) => {
                    reporter.report(Event::Info(format!(
                        "building with template `{}` ({}; {})",
                        t.name, t.reason, t.source
                    )));
                    write_own_file(&src, TEMPLATE_DOCKERFILE, &t.dockerfile).map_err(|e| {
                        Error::Context {
                            issue: issue.to_string(),
                            message: format!(
                                "cannot write the template's Dockerfile `{TEMPLATE_DOCKERFILE}` \
                                 in the checkout of branch `{}`: {e}",
                                req.branch
                            ),
                        }
                    })?;
                    TEMPLATE_DOCKERFILE.to_string()
                }
                None => image::dockerfile_path(&src, &req.bench.dockerfile, &req.branch)?,
            };
            let spec = BuildSpec {
                dockerfile,
                tag: tag.clone(),
                labels: labels.clone(),
                build_args: req.bench.build_args.clone(),
                target: req.bench.target.clone(),
                owner: owner.clone(),
                limits: Some(req.bench.limits.clone()),
            };
            reporter.report(Event::Step(format!("building {tag}")));
            let limit = req.bench.build_timeout;
            let build = image::build(
                engine.images.as_ref(),
                &src,
                &spec,
                issue,
                &req.branch,
                reporter,
            );
            // past the limit the build's connection is dropped: the engine stops the build and
            // removes its step container; the running bench is not touched
            let id = tokio::time::timeout(limit, build)
                .await
                .map_err(|_| Error::Build {
                    issue: issue.to_string(),
                    branch: req.branch.clone(),
                    message: format!(
                        "it ran past the build timeout of {} s and was stopped (whoever runs \
                     benchctl raises it with --build-timeout or BENCHCTL_BUILD_TIMEOUT)",
                        limit.as_secs()
                    ),
                })??;
            drop(checkout);
            reporter.report(Event::Done(format!("built {tag}")));
            (id, None)
        }
    };
    // the image's labels reach the bench's container: none under benchctl's, the proxy's or
    // the engine's prefixes but those benchctl wrote
    let found = match found {
        Some(l) => l,
        None => engine
            .images
            .inspect(&id)
            .await?
            .map(|i| i.labels)
            .unwrap_or_default(),
    };
    let written = crate::build::written_labels(&BuildSpec {
        labels,
        owner,
        ..Default::default()
    });
    let foreign = labels::foreign(&found, &written);
    if !foreign.is_empty() {
        let _ = engine.images.remove(&id).await;
        return Err(Error::usage(format!(
            "the image of {issue} (branch `{}`, commit {}) carries the label{} {}, from its \
             Dockerfile, a build argument or its base image; labels under {} are benchctl's \
             and the operator's (they find, hide and route benches), never a branch's: remove \
             {} from the branch (or use another base image) and deploy again. Nothing was \
             started and the image was removed",
            req.branch,
            short_commit(&commit),
            if foreign.len() == 1 { "" } else { "s" },
            foreign
                .iter()
                .map(|k| format!("`{}`", k.escape_debug()))
                .collect::<Vec<_>>()
                .join(", "),
            labels::RESERVED_PREFIXES.join(", "),
            if foreign.len() == 1 { "it" } else { "them" },
        )));
    }
    Ok(Image {
        id,
        tag,
        commit,
        commit_time,
    })
}

/// Writes `name` in the checkout `dir` as a new file of benchctl's: whatever the branch put
/// under that name (a symlink to a host file, a file) is unlinked first, never written through,
/// and the file is created exclusively without following links.
fn write_own_file(dir: &std::path::Path, name: &str, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path)?,
        Ok(_) => std::fs::remove_file(&path)?,
        Err(_) => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    f.write_all(content.as_bytes())
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
