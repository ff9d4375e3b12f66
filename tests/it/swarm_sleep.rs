//! Sleep and wake on the swarm backend: a sleeping bench is its service scaled to 0 replicas
//! (the service, its labels and link stay; no task runs), and a wake scales it back to 1 and
//! waits until it answers. It runs in the swarm module's group (one swarm for both).

use crate::support::swarm::{swarm_cmd, SwarmGuard};
use crate::support::*;
use serde_json::Value;
use std::process::Command;

fn replicas(issue: &str) -> Option<i64> {
    let filter = format!("label=benchctl.issue={issue}");
    let ids = docker_lines(&["service", "ls", "-q", "--filter", &filter]);
    let out = Command::new("docker")
        .args(["service", "inspect", ids.first()?])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["Spec"]["Mode"]["Replicated"]["Replicas"].as_i64()
}

fn running_tasks(issue: &str) -> usize {
    let filter = format!("label=benchctl.issue={issue}");
    docker_lines(&["ps", "-q", "--filter", &filter]).len()
}

#[test]
fn a_sleeping_swarm_bench_is_scaled_to_zero_and_back() {
    let _group = crate::support::group("it::swarm");
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWS-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/SWS-1", "sws-1\n");
    let r = run(swarm_cmd().args([
        "--json",
        "deploy",
        "feature/SWS-1",
        "--repo",
        &repo.path_str(),
        "--no-link",
        "--memory",
        "64m",
        "--ready-timeout",
        "60",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(replicas("SWS-1"), Some(1));

    let r = run(swarm_cmd().args(["sleep", "SWS-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(replicas("SWS-1"), Some(0), "scaled to 0, not removed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while running_tasks("SWS-1") > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(running_tasks("SWS-1"), 0, "its task stopped");
    let listed = listed_by(swarm_cmd(), "SWS-1");
    assert_eq!(listed["state"], "sleeping", "{listed}");

    let r = run(swarm_cmd().args(["--json", "wake", "SWS-1", "--ready-timeout", "60"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let woke: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(woke["woke"], true, "{woke}");
    assert_eq!(replicas("SWS-1"), Some(1));
    let url = woke["url"].as_str().unwrap();
    assert_eq!(http_get(url).as_deref(), Some("sws-1\n"), "{woke}");
    let state = listed_by(swarm_cmd(), "SWS-1")["state"].clone();
    assert!(
        state.as_str().unwrap_or("").starts_with("running"),
        "{state}"
    );
}
