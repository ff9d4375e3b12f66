//! Teardown: an issue's containers (or service), images and last-deploy record removed under
//! its lock, and its Tracker field cleared.

use crate::app::inspect::{benches, service_containers};
use crate::app::lock::{IssueLock, LockOptions};
use crate::app::record::LastDeploy;
use crate::app::Context;
use crate::engine::{labels, Engine};
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;
use crate::Result;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TeardownOutcome {
    pub issue: String,
    pub removed_containers: Vec<String>,
    pub removed_images: usize,
    pub link_cleared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_error: Option<String>,
    /// What the repository's code host was told (the environment is inactive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_host: Option<crate::feedback::Report>,
    /// The removed bench's repository, commit and branch (from its labels), for the code host.
    #[serde(skip)]
    pub source: Option<(String, String, String)>,
}

/// Removes the issue's images but those in `keep` (the ones its bench uses).
pub(crate) async fn remove_unused_images(
    engine: &Engine,
    issue: &str,
    keep: &[String],
    reporter: &SharedReporter,
) -> usize {
    let Ok(images) = engine.images.list(&labels::issue_filter(issue)).await else {
        return 0;
    };
    let mut removed = 0;
    for img in images {
        if keep.contains(&img.id) {
            continue;
        }
        match engine.images.remove(&img.id).await {
            Ok(()) => removed += 1,
            Err(e) => reporter.report(Event::Warn(format!(
                "could not remove image {} of {issue}: {e}",
                img.id
            ))),
        }
    }
    removed
}

/// Removes what a multi-service bench of `issue` has besides its web service: its other
/// `services`, one-off hook containers, network, and (unless `keep_volumes`) its volumes with
/// the record of their seeding. Only what this backend made ([`labels::BACKEND`]); returns
/// the removed containers' names.
pub(crate) async fn remove_stack_parts(
    engine: &Engine,
    issue: &str,
    services: &[crate::engine::ContainerInfo],
    keep_volumes: bool,
    reporter: &SharedReporter,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for c in services {
        engine.benches.remove(&c.id).await?;
        reporter.report(Event::Done(format!("removed service {}", c.name)));
        removed.push(c.name.clone());
    }
    let mut filter = labels::issue_filter(issue);
    filter.push(format!("{}={}", labels::BACKEND, engine.stacks.kind()));
    for h in engine.stacks.remove_hooks(&filter).await? {
        reporter.report(Event::Done(format!("removed hook container {h}")));
        removed.push(h);
    }
    for n in engine.stacks.remove_networks(&filter).await? {
        reporter.report(Event::Done(format!("removed network {n}")));
    }
    for f in engine.stacks.remove_files(&filter).await? {
        reporter.report(Event::Done(format!("removed file {f}")));
    }
    if !keep_volumes {
        // the data goes, and with it the record of its seeding
        let seeded = crate::app::deploy::hooks::seeded_marker(issue);
        if let Some(m) = engine.markers.get(&seeded).await? {
            engine.markers.remove(&m).await?;
        }
        for v in engine.stacks.remove_volumes(&filter).await? {
            reporter.report(Event::Done(format!("removed volume {v}")));
        }
    }
    Ok(removed)
}

/// What a teardown leaves.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    /// Leave the Tracker field as it is (`--keep-link`).
    pub link: bool,
    /// Leave a multi-service bench's named volumes (`--keep-volumes`).
    pub volumes: bool,
    /// And stop its teardown hook after this long (`max-hook-timeout`), whatever the bench
    /// was deployed with: a teardown always ends.
    pub hook_limit: std::time::Duration,
}

/// Removes the issue's containers (every service's), network, volumes (unless `keep.volumes`)
/// and images, and clears its field (unless `keep.link` or no Tracker is configured).
pub async fn teardown(
    issue: &str,
    engine: &Engine,
    tracker: Option<&TrackerClient>,
    field: &str,
    keep: Keep,
    reporter: &SharedReporter,
    lock: LockOptions,
) -> Result<TeardownOutcome> {
    let clear_link = !keep.link;
    let held = IssueLock::acquire(engine, issue, "teardown", None, lock, reporter).await?;
    let result = async {
        reporter.report(Event::Step(format!("tearing down {issue}")));
        let containers = benches(engine, Some(issue)).await?;
        let services = service_containers(engine, Some(issue)).await?;
        for c in &containers {
            let limit = keep.hook_limit;
            crate::app::deploy::hooks::before_teardown(engine, c, &services, limit, reporter).await;
        }
        let mut removed = Vec::new();
        for c in &containers {
            engine.benches.remove(&c.id).await?;
            reporter.report(Event::Done(format!("removed container {}", c.name)));
            removed.push(c.name.clone());
        }
        // a multi-service bench's other services, then its network and volumes
        removed.extend(remove_stack_parts(engine, issue, &services, keep.volumes, reporter).await?);
        // a deploy killed in its commit step left its container (the lock is ours: no live one)
        removed.extend(
            engine
                .images
                .remove_build_steps(&labels::issue_filter(issue))
                .await?,
        );
        let removed_images = remove_unused_images(engine, issue, &[], reporter).await;
        LastDeploy::forget(engine, issue).await?;
        crate::app::sleep::forget(engine, issue).await?;
        let mut out = TeardownOutcome {
            issue: issue.to_string(),
            removed_containers: removed,
            removed_images,
            link_cleared: false,
            link_error: None,
            code_host: None,
            source: containers.iter().find_map(|c| {
                Some((
                    c.labels.get(labels::REPO)?.clone(),
                    c.labels.get(labels::COMMIT)?.clone(),
                    c.labels.get(labels::BRANCH).cloned().unwrap_or_default(),
                ))
            }),
        };
        // the field the bench was linked in (a branch's config may name another than the default)
        let field = containers
            .iter()
            .find_map(|c| c.labels.get(labels::FIELD).cloned())
            .unwrap_or_else(|| field.to_string());
        let field = field.as_str();
        if let (true, Some(t)) = (clear_link, tracker) {
            reporter.report(Event::Step(format!("clearing field `{field}` of {issue}")));
            match t.set_field(issue, field, None).await {
                Ok(_) => out.link_cleared = true,
                Err(e) => out.link_error = Some(e.to_string()),
            }
        }
        Ok(out)
    }
    .await;
    held.release_or_warn(engine, reporter).await;
    result
}

/// Teardown as the front ends run it: under the issue's lock, the field cleared when
/// `clear_link` (the one the bench was linked in), and the messengers told when a bench was
/// removed, with `reason`.
pub async fn run(
    ctx: &Context<'_>,
    issue: &str,
    field: &str,
    keep: Keep,
    reason: &str,
) -> Result<TeardownOutcome> {
    let out = teardown(
        issue,
        ctx.engine,
        ctx.tracker,
        field,
        keep,
        ctx.reporter,
        ctx.lock,
    )
    .await?;
    let mut out = out;
    if let Some((repo, commit, branch)) = &out.source {
        let bench = crate::feedback::observer::Removed {
            location: repo,
            issue,
            commit,
            branch,
        };
        out.code_host =
            crate::feedback::observer::removed(ctx.code_hosts, &bench, ctx.reporter).await;
    }
    if !out.removed_containers.is_empty() {
        ctx.notify(&crate::notify::Message::Removed {
            issue: issue.to_string(),
            reason: reason.to_string(),
        })
        .await;
    }
    Ok(out)
}
