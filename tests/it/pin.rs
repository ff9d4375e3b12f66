//! `benchctl pin` / `unpin`: a pinned bench does not expire (`gc --ttl`), `list` says so, a
//! pin past its `--until` is removed, and an unpinned bench expires again.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use serde_json::Value;

fn listed_pins() -> Vec<(String, bool)> {
    let r = run(benchctl().args(["list", "--json"]));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            (
                b["issue"].as_str().unwrap_or("").to_string(),
                b["pinned"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

#[test]
fn a_pinned_bench_does_not_expire_and_list_says_so() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["PIN-1", "PIN-2", "PIN-3", "PIN-4"]);
    // PIN-4 carries the Tracker tag that pins (`--pin-tag keep-bench`)
    let t = FakeTracker::start(Auth::OAuth("pin-token-canary"), Org::Org("org-pin"));
    t.add_issue("PIN-1").add_issue("PIN-2").add_issue("PIN-4");
    t.put_field("PIN-4", "tags", serde_json::json!(["other", "keep-bench"]));
    let repo = AppRepo::new();
    for key in ["PIN-1", "PIN-2", "PIN-4"] {
        let branch = format!("feature/{key}");
        repo.branch_with(&branch, &format!("{key}\n"));
        let r = run(benchctl().args(["deploy", &branch, "--repo", &repo.path_str(), "--no-link"]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let r = run(benchctl().args(["pin", "pin-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("PIN-1 is pinned"), "{}", r.all());
    // a pin whose time is up is removed by gc
    let r = run(benchctl().args(["pin", "PIN-3", "--until", "1s"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let pins = listed_pins();
    assert!(pins.contains(&("PIN-1".into(), true)), "{pins:?}");
    assert!(pins.contains(&("PIN-2".into(), false)), "{pins:?}");
    assert!(
        run(benchctl().args(["list"])).stdout.contains("(pinned)"),
        "the table says it too"
    );

    std::thread::sleep(std::time::Duration::from_secs(2));
    // only this test's repository: gc with a one-second TTL
    let gc = || {
        run(benchctl()
            .args([
                "gc",
                "--ttl",
                "1s",
                "--scope",
                &repo.path_str(),
                "--keep-link",
            ])
            .args(["--pin-tag", "keep-bench"])
            .tracker(&t, "pin-token-canary", "org-pin"))
    };
    let r = gc();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        issue_containers("PIN-1").len(),
        1,
        "pinned: kept\n{}",
        r.all()
    );
    assert!(issue_containers("PIN-2").is_empty(), "{}", r.all());
    assert_eq!(
        issue_containers("PIN-4").len(),
        1,
        "tagged: kept\n{}",
        r.all()
    );
    assert!(r.all().contains("remove-pin PIN-3"), "{}", r.all());
    assert!(r.all().contains("PIN-1 is pinned"), "{}", r.all());

    let r = run(benchctl().args(["unpin", "PIN-1"]));
    assert!(
        r.stdout.contains("PIN-1 is no longer pinned"),
        "{}",
        r.all()
    );
    let r = run(benchctl().args(["unpin", "PIN-1"]));
    assert!(r.stdout.contains("PIN-1 was not pinned"), "{}", r.all());
    let r = gc();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(issue_containers("PIN-1").is_empty(), "{}", r.all());
}
