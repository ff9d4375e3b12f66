//! gc of what a multi-service bench leaves when it has no bench (its web service): a first
//! deploy that failed or was killed. Its other services, one-off hook containers and network
//! are removed (an issue being deployed keeps them); its volumes hold data and stay for the
//! issue's next bench until the issue is closed. Only this backend's parts
//! ([`labels::BACKEND`]), within the scope.

use super::{closed, GcAction, GcOptions};
use crate::app::deploy::stack_plan::SERVICE_ROLE;
use crate::app::inspect::service_containers;
use crate::app::lock::{IssueLock, LockOptions};
use crate::app::teardown::remove_stack_parts;
use crate::engine::{labels, ContainerInfo, Engine};
use crate::output::SharedReporter;
use crate::tracker::TrackerClient;
use crate::Result;
use std::collections::{BTreeMap, HashMap};

/// The issues among `parts` (labels of services, networks or volumes) without a bench in
/// `benches`, within the scope: issue -> how many parts.
fn benchless(
    parts: &[HashMap<String, String>],
    benches: &[ContainerInfo],
    opts: &GcOptions,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in parts {
        let Some(issue) = l.get(labels::ISSUE) else {
            continue;
        };
        if opts.scope.is_some() && l.get(labels::REPO) != opts.scope.as_ref() {
            continue;
        }
        if benches
            .iter()
            .any(|b| b.labels.get(labels::ISSUE) == Some(issue))
        {
            continue;
        }
        *out.entry(issue.clone()).or_default() += 1;
    }
    out
}

/// Removes (or, with `--dry-run`, names) the parts of multi-service benches that have no
/// bench: services, hook containers and networks always, volumes once the issue is closed.
pub(super) async fn leftovers(
    engine: &Engine,
    tracker: Option<&TrackerClient>,
    opts: &GcOptions,
    benches: &[ContainerInfo],
    instant: LockOptions,
    reporter: &SharedReporter,
) -> Result<Vec<GcAction>> {
    let ours = [
        format!("{}=true", labels::MANAGED),
        format!("{}={}", labels::BACKEND, engine.stacks.kind()),
    ];
    let mut services_filter = ours.to_vec();
    services_filter.push(format!("{}={SERVICE_ROLE}", labels::ROLE));
    let mut running: Vec<HashMap<String, String>> = engine
        .stacks
        .services(&services_filter)
        .await?
        .into_iter()
        .map(|c| c.labels)
        .collect();
    running.extend(
        engine
            .stacks
            .networks(&ours)
            .await?
            .into_iter()
            .map(|n| n.1),
    );
    let volumes: Vec<HashMap<String, String>> = engine
        .stacks
        .volumes(&ours)
        .await?
        .into_iter()
        .map(|v| v.1)
        .collect();
    let running = benchless(&running, benches, opts);
    let stored = benchless(&volumes, benches, opts);

    let mut actions = Vec::new();
    let issues: std::collections::BTreeSet<&String> = running.keys().chain(stored.keys()).collect();
    for issue in issues {
        // the data goes only with a closed issue
        let gone = match stored.contains_key(issue) {
            true => closed(tracker, issue, opts, reporter).await.0,
            false => None,
        };
        if running.contains_key(issue) {
            actions.push(GcAction {
                action: "remove-services".into(),
                target: issue.clone(),
                reason: "the services and network of a multi-service bench that has no bench \
                         (a first deploy that failed or was stopped)"
                    .into(),
            });
        }
        if let Some(why) = &gone {
            actions.push(GcAction {
                action: "remove-volumes".into(),
                target: issue.clone(),
                reason: format!("the data of a bench that is gone: {why}"),
            });
        }
        if opts.dry_run {
            continue;
        }
        // an issue being deployed keeps what it has
        let Ok(held) = IssueLock::acquire(engine, issue, "gc", None, instant, reporter).await
        else {
            actions.retain(|a| &a.target != issue);
            continue;
        };
        let removed = async {
            let services = service_containers(engine, Some(issue)).await?;
            remove_stack_parts(engine, issue, &services, gone.is_none(), reporter).await
        }
        .await;
        held.release_or_warn(engine, reporter).await;
        removed?;
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_parts_of_issues_without_a_bench_within_the_scope_count() {
        let opts = GcOptions {
            dry_run: true,
            ttl: None,
            closed_statuses: vec![],
            scope: Some("/r".into()),
            field: "bench".into(),
            clear_link: false,
            cache_dir: "/nonexistent".into(),
            cache_max_age: std::time::Duration::ZERO,
            build_cache: false,
            pin_tag: None,
            last_used: Default::default(),
            hook_limit: std::time::Duration::from_secs(600),
        };
        let bench = ContainerInfo {
            id: "1".into(),
            name: "benchctl-p-1".into(),
            image: String::new(),
            image_id: String::new(),
            labels: parts(&[(labels::ISSUE, "P-1")]),
            state: "running".into(),
            running: true,
            exit_code: None,
            restarts: 0,
            health: None,
            host_port: None,
            ip: None,
            created: None,
            host: None,
            reach_note: None,
        };
        let found = benchless(
            &[
                parts(&[(labels::ISSUE, "P-1"), (labels::REPO, "/r")]),
                parts(&[(labels::ISSUE, "P-2"), (labels::REPO, "/r")]),
                parts(&[(labels::ISSUE, "P-2"), (labels::REPO, "/r")]),
                parts(&[(labels::ISSUE, "P-3"), (labels::REPO, "/other")]),
                parts(&[(labels::REPO, "/r")]),
            ],
            &[bench],
            &opts,
        );
        assert_eq!(found, BTreeMap::from([("P-2".to_string(), 2)]));
    }
}
