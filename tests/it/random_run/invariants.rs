//! What must hold once a random run has converged, per issue and for the whole engine, on
//! either backend.

use super::{World, FIELD};
use crate::support::snapshot::Snapshot;
use crate::support::*;
use std::time::{Duration, Instant};

/// What must hold after convergence; each broken invariant is a line.
pub(super) fn broken(w: &World, deployed: &[bool], before: &Snapshot) -> Vec<String> {
    let mut broken = Vec::new();
    let list = run(w.benchctl().args(["--json", "list"]));
    let rows = list.json();
    let rows = rows.as_array().cloned().unwrap_or_default();
    for (i, key) in w.keys.iter().enumerate() {
        let containers = issue_containers(key);
        let row = rows.iter().find(|r| r["issue"] == key.as_str());
        let field = w.tracker.field(key, FIELD);
        let services = services(key);
        if containers
            .iter()
            .chain(&services)
            .any(|c| c.contains("-next-"))
        {
            broken.push(format!("{key}: a -next- container is left: {containers:?}"));
        }
        if issue_locked(key) || configs(key).iter().any(|c| c.starts_with("benchctl-lock-")) {
            broken.push(format!("{key}: its lock is left"));
        }
        if w.swarm && services.len() != usize::from(deployed[i]) {
            broken.push(format!(
                "{key}: {} bench(es) wanted, services: {services:?}",
                usize::from(deployed[i])
            ));
        }
        let steps = docker_lines(&[
            "ps",
            "-aq",
            "--filter",
            "label=benchctl.role=build-step",
            "--filter",
            &format!("label=benchctl.issue={key}"),
        ]);
        if !steps.is_empty() {
            broken.push(format!("{key}: build step containers are left: {steps:?}"));
        }
        if !deployed[i] {
            if !containers.is_empty() {
                broken.push(format!("{key}: torn down, yet holds {containers:?}"));
            }
            if !services.is_empty() {
                broken.push(format!("{key}: torn down, yet has services {services:?}"));
            }
            if row.is_some() {
                broken.push(format!("{key}: torn down, yet listed: {row:?}"));
            }
            if field.is_some() {
                broken.push(format!("{key}: torn down, yet its field is {field:?}"));
            }
            continue;
        }
        let running: Vec<_> = containers
            .iter()
            .filter(|c| c.ends_with(" running"))
            .collect();
        // a swarm keeps the stopped tasks of a service's history (labelled, removed with it)
        if running.len() != 1 || (!w.swarm && containers.len() != 1) {
            broken.push(format!(
                "{key}: not exactly one running bench: {containers:?}"
            ));
        }
        let Some(row) = row else {
            broken.push(format!("{key}: deployed, yet not listed"));
            continue;
        };
        let url = row["url"].as_str().unwrap_or_default().to_string();
        let head = w.heads.lock().unwrap().get(&i).cloned();
        let served = http_get(&url);
        if head.is_some() && served != head {
            broken.push(format!(
                "{key}: {url} serves {served:?}, the head is {head:?}"
            ));
        }
        if field != Some(serde_json::Value::from(url.clone())) {
            broken.push(format!(
                "{key}: the field is {field:?}, the bench is at {url}"
            ));
        }
        // gc leaves only the image the bench runs
        let images = docker_lines(&[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=benchctl.issue={key}"),
        ]);
        if images.len() > 1 {
            broken.push(format!(
                "{key}: images besides the bench's are left: {images:?}"
            ));
        }
    }
    let checkouts: Vec<_> = std::fs::read_dir(w.cache.path().join("checkouts"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !checkouts.is_empty() {
        broken.push(format!("checkouts are left: {checkouts:?}"));
    }
    let layers = docker_lines(&[
        "images",
        "-q",
        "--filter",
        "dangling=true",
        "--filter",
        &format!("label=benchctl.repo={}", w.repo_path),
    ]);
    if !layers.is_empty() {
        broken.push(format!("gc --build-cache left build layers: {layers:?}"));
    }
    let unlabelled = Snapshot::unlabelled_since(before);
    if !unlabelled.is_empty() {
        broken.push(format!("left without benchctl's labels: {unlabelled:#?}"));
    }
    broken
}

/// Swarm services of the issue, by name (none outside a swarm).
fn services(key: &str) -> Vec<String> {
    swarm_list(&["service", "ls"], key)
}

/// Swarm configs (the swarm backend's markers) of the issue, by name.
fn configs(key: &str) -> Vec<String> {
    swarm_list(&["config", "ls"], key)
}

fn swarm_list(what: &[&str], key: &str) -> Vec<String> {
    if crate::support::swarm::swarm_state() != "active" {
        return Vec::new();
    }
    let filter = format!("label=benchctl.issue={key}");
    let mut args = what.to_vec();
    args.extend(["--filter", &filter, "--format", "{{.Name}}"]);
    docker_lines(&args)
}

/// Waits (a minute at most) until each issue runs as many containers as it has benches (one or
/// none): a swarm stops the task an update replaced after its grace period, and removes a
/// removed service's tasks in the background. Containers settle at once.
pub(super) fn settle(w: &World, deployed: &[bool]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let unsettled: Vec<String> = w
            .keys
            .iter()
            .zip(deployed)
            .filter_map(|(key, deployed)| {
                let running = issue_containers(key)
                    .into_iter()
                    .filter(|c| c.ends_with(" running"))
                    .count();
                (running != usize::from(*deployed)).then(|| format!("{key}: {running} running"))
            })
            .collect();
        if unsettled.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the benches did not settle in 60 s: {unsettled:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
