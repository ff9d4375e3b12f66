//! A multi-service bench's hooks: `seed` once in its life (a marker says it ran, and lives as
//! long as its volumes), `release` on every deploy before the new web service starts, and
//! `teardown` before its removal. A hook runs in its service's running container, or in a
//! one-off container of the service (its image, environment, volumes and network); its output
//! goes to the progress display, and a failure fails the deploy with its last lines while the
//! running bench keeps serving.

use super::stack::StackCtx;
use super::stack_extras::Copied;
use super::stack_plan::{self as sp, Shape};
use crate::app::request::Hook;
use crate::engine::{labels, ContainerInfo, Engine};
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use std::collections::HashMap;

/// The label of the bench carrying its teardown hook (teardown reads no branch).
pub const TEARDOWN_HOOK: &str = "benchctl.hook-teardown";

/// The marker saying the bench was seeded.
pub fn seeded_marker(issue: &str) -> String {
    format!("benchctl-seeded-{}", crate::naming::slug(issue, 60))
}

/// Runs `hook` for the deploy in `cx`; `ids` are the running containers of the other services,
/// `images` each service's image, `copies` the files each copies in.
pub(super) async fn run(
    cx: &StackCtx<'_>,
    hook: &Hook,
    ids: &HashMap<String, String>,
    images: &HashMap<String, String>,
    copies: &HashMap<String, Copied>,
) -> Result<()> {
    let (req, engine, reporter) = (cx.req, cx.engine, cx.reporter);
    let issue = req.issue.as_str();
    if hook.name == "seed" && engine.markers.get(&seeded_marker(issue)).await?.is_some() {
        return Ok(());
    }
    reporter.report(Event::Step(format!(
        "{} hook of {issue}: `{}` in service {}",
        hook.name,
        hook.command.join(" "),
        hook.service
    )));
    // the web service's new version is not running yet: its hooks run one-off
    let running = ids.get(&hook.service).filter(|_| !hook.one_off);
    let (code, lines) = match running {
        Some(id) => {
            engine
                .stacks
                .exec(id, &hook.command, hook.timeout, reporter)
                .await?
        }
        None => one_off(cx, hook, images, copies.get(&hook.service)).await?,
    };
    if code != 0 {
        return Err(Error::NotReady {
            issue: issue.to_string(),
            reason: format!(
                "its {} hook (`{}` in service {}) failed with exit code {code}",
                hook.name,
                hook.command.join(" "),
                hook.service
            ),
            logs: lines,
            kept_old: cx.replaces.is_some(),
        });
    }
    if hook.name == "seed" {
        let mut l = labels::issue_labels(issue);
        l.insert(labels::ROLE.into(), "seeded".into());
        engine.markers.create(&seeded_marker(issue), &l).await?;
    }
    reporter.report(Event::Done(format!("{} hook done", hook.name)));
    Ok(())
}

/// Runs `hook` in a container of its own made from its service; returns the exit code and the
/// last lines. The container is removed whatever happens.
async fn one_off(
    cx: &StackCtx<'_>,
    hook: &Hook,
    images: &HashMap<String, String>,
    copies: Option<&Copied>,
) -> Result<(i64, Vec<String>)> {
    let (req, engine, reporter) = (cx.req, cx.engine, cx.reporter);
    let issue = req.issue.as_str();
    let s = &cx.stack.project.services[&hook.service];
    let mut l = sp::stack_labels(
        issue,
        &req.repo.public(),
        &req.run.deploy_id,
        engine.stacks.kind(),
    );
    l.insert(labels::ROLE.into(), "hook".into());
    let name = format!(
        "benchctl-{}-hook-{}-{:06x}",
        crate::naming::slug(issue, 60),
        hook.name,
        rand::random::<u32>() & 0xff_ffff
    );
    let shape = Shape {
        issue,
        service: &hook.service,
        image: images[&hook.service].clone(),
        image_id: images[&hook.service].clone(),
        cap: &req.bench.limits,
        cap_add: &req.bench.cap_add,
        publish: None,
        copies,
        web: &cx.stack.web,
    };
    let mut spec = sp::service_spec(s, shape, name, l).map_err(Error::usage)?;
    spec.cmd = Some(hook.command.clone());
    spec.entrypoint = Some(Vec::new());
    spec.restart = None;
    spec.health = None;
    engine.stacks.run_once(&spec, hook.timeout, reporter).await
}

/// The teardown hook a bench carries, as a label value.
pub fn teardown_label(hook: &Hook) -> String {
    serde_json::json!({
        "service": hook.service,
        "command": hook.command,
        "timeout": hook.timeout.as_secs(),
    })
    .to_string()
}

/// Runs the teardown hook `bench` carries, in its service's running container; a failure only
/// warns (the bench goes anyway).
pub async fn before_teardown(
    engine: &Engine,
    bench: &ContainerInfo,
    services: &[ContainerInfo],
    limit: std::time::Duration,
    reporter: &SharedReporter,
) {
    let Some(v) = bench
        .labels
        .get(TEARDOWN_HOOK)
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return;
    };
    let service = v["service"].as_str().unwrap_or_default();
    let command: Vec<String> = v["command"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    let timeout = std::time::Duration::from_secs(v["timeout"].as_u64().unwrap_or(300)).min(limit);
    let target = std::iter::once(bench)
        .chain(services)
        .find(|c| c.labels.get(sp::SERVICE).map(String::as_str) == Some(service) && c.running);
    let Some(target) = target else {
        reporter.report(Event::Warn(format!(
            "teardown hook not run: service {service} is not running"
        )));
        return;
    };
    reporter.report(Event::Step(format!(
        "teardown hook: `{}` in service {service}",
        command.join(" ")
    )));
    match engine
        .stacks
        .exec(&target.id, &command, timeout, reporter)
        .await
    {
        Ok((0, _)) => reporter.report(Event::Done("teardown hook done".into())),
        Ok((code, _)) => reporter.report(Event::Warn(format!(
            "the teardown hook failed with exit code {code}; removing the bench anyway"
        ))),
        Err(e) => reporter.report(Event::Warn(format!(
            "the teardown hook failed: {e}; removing the bench anyway"
        ))),
    }
}
