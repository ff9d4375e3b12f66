//! Sleeping benches: a bench put to sleep is stopped in place (a container stopped, a swarm
//! service scaled to 0), every service of a multi-service bench with it; its volumes, network,
//! labels and Tracker link stay, and a wake starts it as it was. Whether a bench sleeps, since
//! when and why is a labelled marker `benchctl-sleep.<issue>` (the engine is the source of
//! truth): a stopped bench without one crashed or was stopped by hand, and is not asleep.

use crate::app::cap::Cap;
use crate::app::deploy::ready::{wait_ready, Probe};
use crate::app::inspect::{find_bench, record_from, service_containers};
use crate::app::lock::IssueLock;
use crate::app::Context;
use crate::clock::now_unix;
use crate::engine::{labels, ContainerInfo, Engine};
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SINCE: &str = "benchctl.sleep.since";
const REASON: &str = "benchctl.sleep.reason";

/// A sleeping bench, as its marker says.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Asleep {
    pub issue: String,
    /// Unix seconds.
    pub since: u64,
    /// Why it sleeps: `idle`, `cap`, or `by hand`.
    pub reason: String,
}

fn marker_name(issue: &str) -> String {
    // a dot: no bench (`benchctl-<slug>`) or lock (`benchctl-lock-<slug>`) can have this name
    format!("benchctl-sleep.{}", crate::naming::slug(issue, 60))
}

fn asleep_from(m: &crate::engine::Marker) -> Option<Asleep> {
    Some(Asleep {
        issue: m.labels.get(labels::ISSUE)?.clone(),
        since: m
            .labels
            .get(SINCE)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        reason: m.labels.get(REASON).cloned().unwrap_or_default(),
    })
}

/// Every sleep marker (a bench woken by hand with `docker start` may still have one: a
/// running bench is awake whatever its marker says).
pub async fn all(engine: &Engine) -> Result<Vec<Asleep>> {
    let found = engine.markers.list(&labels::role_filter("sleep")).await?;
    Ok(found.iter().filter_map(asleep_from).collect())
}

/// The issue's sleep marker.
pub async fn of(engine: &Engine, issue: &str) -> Result<Option<Asleep>> {
    Ok(engine
        .markers
        .get(&marker_name(issue))
        .await?
        .as_ref()
        .and_then(asleep_from))
}

/// Removes the issue's sleep marker (a teardown, a wake, a deploy that replaced the bench).
pub async fn forget(engine: &Engine, issue: &str) -> Result<()> {
    if let Some(m) = engine.markers.get(&marker_name(issue)).await? {
        engine.markers.remove(&m).await?;
    }
    Ok(())
}

/// What `benchctl sleep` did.
#[derive(Debug, Clone, Serialize)]
pub struct SleepOutcome {
    pub issue: String,
    /// `false`: it already slept.
    pub slept: bool,
    pub since: u64,
    pub reason: String,
    /// The containers (or services) stopped.
    pub stopped: Vec<String>,
}

/// Puts `issue`'s bench to sleep under its lock; a pinned one is refused (exit 2).
pub async fn sleep(ctx: &Context<'_>, issue: &str, reason: &str) -> Result<SleepOutcome> {
    let now = now_unix();
    let pins = crate::app::pin::pins(ctx.engine).await?;
    if let Some(p) = crate::app::pin::active(&pins, issue, now) {
        let until = p
            .until
            .map(|u| format!(" until {}", crate::clock::utc(u)))
            .unwrap_or_default();
        return Err(Error::usage(format!(
            "{issue} is pinned{until}: a pinned bench never sleeps (`benchctl unpin {issue}` \
             first)"
        )));
    }
    let held = IssueLock::acquire(ctx.engine, issue, "sleep", None, ctx.lock, ctx.reporter).await?;
    let result = sleep_held(ctx.engine, issue, reason, ctx.reporter).await;
    held.release_or_warn(ctx.engine, ctx.reporter).await;
    result
}

/// [`sleep`] with the issue's lock held.
pub(crate) async fn sleep_held(
    engine: &Engine,
    issue: &str,
    reason: &str,
    reporter: &SharedReporter,
) -> Result<SleepOutcome> {
    let Some(bench) = find_bench(engine, issue).await? else {
        return Err(no_bench(issue));
    };
    let services = service_containers(engine, Some(issue)).await?;
    let marker = of(engine, issue).await?;
    if let (Some(m), false) = (&marker, bench.running) {
        return Ok(SleepOutcome {
            issue: issue.to_string(),
            slept: false,
            since: m.since,
            reason: m.reason.clone(),
            stopped: Vec::new(),
        });
    }
    // the marker first: a crash between the two leaves a running bench (awake) with a marker,
    // never a stopped one without (which would read as crashed)
    let since = now_unix();
    if marker.is_none() {
        let mut l = labels::issue_labels(issue);
        l.insert(labels::ROLE.to_string(), "sleep".to_string());
        l.insert(SINCE.to_string(), since.to_string());
        l.insert(REASON.to_string(), reason.to_string());
        engine.markers.create(&marker_name(issue), &l).await?;
    }
    reporter.report(Event::Step(format!("putting {issue} to sleep ({reason})")));
    let mut stopped = Vec::new();
    // the web service first (nothing answers half-asleep), then what it uses
    for c in std::iter::once(&bench).chain(services.iter()) {
        engine.power.stop(&c.id).await?;
        stopped.push(c.name.clone());
    }
    reporter.report(Event::Done(format!(
        "{issue} sleeps: stopped {}",
        stopped.join(", ")
    )));
    // a marker left by an interrupted sleep keeps its time and reason
    let (since, reason) = match marker {
        Some(m) => (m.since, m.reason),
        None => (since, reason.to_string()),
    };
    Ok(SleepOutcome {
        issue: issue.to_string(),
        slept: true,
        since,
        reason,
        stopped,
    })
}

fn no_bench(issue: &str) -> Error {
    Error::usage(format!(
        "{issue} has no bench (`benchctl list` shows the benches; `benchctl deploy` makes one)"
    ))
}

/// What `benchctl wake` did.
#[derive(Debug, Clone, Serialize)]
pub struct WakeOutcome {
    pub issue: String,
    /// `false`: it was awake.
    pub woke: bool,
    /// How long it had slept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slept_seconds: Option<u64>,
    pub url: Option<String>,
    /// From the first start to its first answer.
    pub ready_ms: u64,
    /// The Tracker field was written again (the address changed: a new published port).
    pub relinked: bool,
    /// The Tracker field the bench was linked in (its label).
    #[serde(skip)]
    field: Option<String>,
}

/// Wakes `issue`'s bench under its lock and waits until it answers (at most `timeout`); the
/// Tracker field is written again when its address changed.
pub async fn wake(
    ctx: &Context<'_>,
    issue: &str,
    timeout: Duration,
    cap: &Cap,
) -> Result<WakeOutcome> {
    let held = IssueLock::acquire(ctx.engine, issue, "wake", None, ctx.lock, ctx.reporter).await?;
    let result = wake_held(ctx, issue, timeout, cap).await;
    held.release_or_warn(ctx.engine, ctx.reporter).await;
    let mut out = result?;
    if let (true, Some(url), Some(tracker)) = (out.woke, &out.url, ctx.tracker) {
        if let Some(field) = out.field.clone() {
            let f = crate::app::link::Field {
                tracker,
                issue,
                name: &field,
            };
            if !f.holds(url).await {
                if let Some(e) = f.set(url, ctx.reporter).await.error() {
                    ctx.reporter.report(Event::Warn(format!(
                        "{issue} is awake at a new address, but the Tracker refused it: {e} \
                         (`benchctl link {issue}`)"
                    )));
                } else {
                    out.relinked = true;
                }
            }
        }
    }
    Ok(out)
}

/// [`wake`] with the issue's lock held (a deploy wakes a sleeping bench this way first): room
/// is made under the `cap` first.
pub(crate) async fn wake_held(
    ctx: &Context<'_>,
    issue: &str,
    timeout: Duration,
    cap: &Cap,
) -> Result<WakeOutcome> {
    let (engine, reporter) = (ctx.engine, ctx.reporter);
    let Some(bench) = find_bench(engine, issue).await? else {
        return Err(no_bench(issue));
    };
    let marker = of(engine, issue).await?;
    let services = service_containers(engine, Some(issue)).await?;
    let all_up = bench.running && services.iter().all(|s| s.running);
    if all_up {
        // awake already (maybe by hand): a marker left is stale
        forget(engine, issue).await?;
        return Ok(WakeOutcome {
            issue: issue.to_string(),
            woke: false,
            slept_seconds: None,
            url: record_from(&bench, now_unix()).url,
            ready_ms: 0,
            relinked: false,
            field: None,
        });
    }
    let need = crate::app::cap::reserved(&bench, &services, false);
    let by = format!("wake of {issue} by {}", std::process::id());
    let room =
        crate::app::cap::make_room(engine, cap, issue, need, &by, ctx.lock, reporter).await?;
    reporter.report(Event::Step(format!("waking {issue}")));
    let started = Instant::now();
    let deadline = started + timeout;
    // what the web service uses first, then the web service
    let starting = async {
        for s in services.iter().filter(|s| !s.running) {
            engine.power.start(&s.id).await?;
        }
        for s in &services {
            settle(engine, s, deadline).await?;
        }
        engine.power.start(&bench.id).await
    };
    let starting = starting.await;
    room.release(engine, reporter).await;
    starting?;
    answered(
        engine,
        &bench,
        deadline.saturating_duration_since(Instant::now()),
    )
    .await?;
    forget(engine, issue).await?;
    let ready_ms = started.elapsed().as_millis() as u64;
    let now = engine.benches.inspect(&bench.id).await?.unwrap_or(bench);
    let url = record_from(&now, now_unix()).url;
    reporter.report(Event::Done(format!(
        "{issue} is awake in {ready_ms} ms{}",
        url.as_deref()
            .map(|u| format!(" at {u}"))
            .unwrap_or_default()
    )));
    Ok(WakeOutcome {
        issue: issue.to_string(),
        woke: true,
        slept_seconds: marker.map(|m| now_unix().saturating_sub(m.since)),
        url,
        ready_ms,
        relinked: false,
        field: now.labels.get(labels::FIELD).cloned(),
    })
}

/// Waits until a started service runs (and is healthy, when it has a health check).
async fn settle(engine: &Engine, s: &ContainerInfo, deadline: Instant) -> Result<()> {
    loop {
        let now = engine.stacks.inspect(&s.id).await?;
        let ok = now
            .as_ref()
            .is_some_and(|c| c.running && c.health.as_deref().is_none_or(|h| h == "healthy"));
        if ok {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let state = now.map(|c| c.state).unwrap_or_else(|| "gone".into());
            return Err(Error::Engine(format!(
                "service {} did not come back from sleep ({state}); `benchctl deploy` starts \
                 the bench afresh",
                s.name
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the woken web service answers as a deploy's readiness does.
async fn answered(engine: &Engine, bench: &ContainerInfo, timeout: Duration) -> Result<()> {
    let l = |k: &str| bench.labels.get(k).cloned().unwrap_or_default();
    let port = l(labels::PORT).parse::<u16>().unwrap_or(80);
    let path = Some(l(labels::HEALTH_PATH)).filter(|p| !p.is_empty());
    let deploy_id = l(labels::DEPLOY_ID);
    wait_ready(
        engine,
        &bench.id,
        &deploy_id,
        &Probe::Direct(port),
        path.as_deref().unwrap_or("/"),
        timeout,
    )
    .await
    .map(|_| ())
    .map_err(|reason| {
        Error::Engine(format!(
            "{} did not answer after waking: {reason}; `benchctl logs {}` shows why, \
             `benchctl deploy` starts it afresh",
            bench.name,
            l(labels::ISSUE)
        ))
    })
}

/// The issue of every bench asleep now, with its marker: `benches` are the benches read.
pub fn sleeping<'a>(
    markers: &'a [Asleep],
    benches: &'a [ContainerInfo],
) -> HashMap<&'a str, &'a Asleep> {
    markers
        .iter()
        .filter(|m| {
            benches
                .iter()
                .any(|b| b.labels.get(labels::ISSUE) == Some(&m.issue) && !b.running)
        })
        .map(|m| (m.issue.as_str(), m))
        .collect()
}
