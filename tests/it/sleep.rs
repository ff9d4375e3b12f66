//! `benchctl sleep` / `wake`: a sleeping bench is stopped in place (its container, address
//! and Tracker link stay), `list` and `status` say `sleeping`, a wake or a deploy starts it
//! again and it answers; a pinned bench is never put to sleep.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;

fn link(t: &FakeTracker) -> Option<String> {
    t.field("SLP-1", "benchLink")
        .and_then(|v| v.as_str().map(str::to_string))
}

#[test]
fn a_sleeping_bench_keeps_its_link_and_wakes_by_command_or_deploy() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["SLP-1"]);
    let t = FakeTracker::start(Auth::OAuth("slp-token-canary"), Org::Org("org-slp"));
    t.add_issue("SLP-1");
    let tracked = |c: &mut std::process::Command| {
        c.tracker(&t, "slp-token-canary", "org-slp");
    };
    let repo = AppRepo::new();
    repo.branch_with("feature/SLP-1", "slp-1\n");
    let deploy = || {
        let mut c = benchctl();
        c.args([
            "deploy",
            "feature/SLP-1",
            "--repo",
            &repo.path_str(),
            "--json",
        ]);
        tracked(&mut c);
        run(&mut c)
    };
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    let url = listed("SLP-1")["url"].as_str().unwrap().to_string();
    assert_eq!(link(&t).as_deref(), Some(url.as_str()));

    let r = run(benchctl().args(["sleep", "SLP-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("SLP-1 sleeps"), "{}", r.all());
    assert_eq!(bench_state("SLP-1"), "exited", "stopped, not removed");
    assert!(http_get(&url).is_none(), "a sleeping bench answers nothing");
    let listed_now = listed("SLP-1");
    assert_eq!(listed_now["state"], "sleeping", "{listed_now}");
    assert!(
        listed_now["sleeping_since"].as_u64().is_some(),
        "{listed_now}"
    );
    let r = run(benchctl().args(["status", "SLP-1"]));
    assert!(r.stdout.contains("sleeping for"), "{}", r.all());
    assert!(r.stdout.contains("sleeping: since"), "{}", r.all());
    assert_eq!(
        link(&t).as_deref(),
        Some(url.as_str()),
        "the link stays: it will answer again"
    );
    let r = run(benchctl().args(["sleep", "SLP-1"]));
    assert!(r.stdout.contains("already sleeps"), "{}", r.all());

    // wake: it answers, at the address the Tracker holds (a new port is written again)
    let mut c = benchctl();
    c.args(["wake", "SLP-1", "--json"]);
    tracked(&mut c);
    let r = run(&mut c);
    assert_eq!(r.code, 0, "{}", r.all());
    let woke: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(woke["woke"], true, "{woke}");
    let now = woke["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&now).as_deref(), Some("slp-1\n"));
    assert_eq!(link(&t).as_deref(), Some(now.as_str()));
    assert_eq!(listed("SLP-1")["state"], "running", "{}", listed("SLP-1"));

    // a pinned bench is never put to sleep
    run(benchctl().args(["pin", "SLP-1"]));
    let r = run(benchctl().args(["sleep", "SLP-1"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("SLP-1 is pinned"), "{}", r.all());
    run(benchctl().args(["unpin", "SLP-1"]));

    // a deploy of the same commit wakes it (no rebuild) and links its address
    let r = run(benchctl().args(["sleep", "SLP-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["action"], "unchanged", "{v}");
    let now = v["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&now).as_deref(), Some("slp-1\n"));
    assert_eq!(link(&t).as_deref(), Some(now.as_str()));
    assert_eq!(listed("SLP-1")["state"], "running");
    assert!(listed("SLP-1").get("sleeping_since").is_none());
    // its teardown takes the marker with it
    let r = run(benchctl().args(["sleep", "SLP-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let r = run(benchctl().args(["teardown", "SLP-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(all_issue_containers("SLP-1").is_empty(), "{}", r.all());

    // a sleeping bench removed by hand leaves its marker to gc
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    run(benchctl().args(["sleep", "SLP-1"]));
    docker_lines(&["rm", "-f", "benchctl-slp-1"]);
    let r = run(benchctl().args(["gc", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("remove-sleep SLP-1"), "{}", r.all());
    assert!(all_issue_containers("SLP-1").is_empty(), "{}", r.all());
}
