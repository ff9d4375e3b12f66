//! gc on the container backend: it removes the benches of closed issues and those idle past
//! `--ttl`, within its scope (a repository) only, and cached clones unused for long.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "life-gc-canary-8080bb";

fn tracker_env(cmd: &mut Command, t: &FakeTracker) {
    cmd.tracker(t, TOKEN, "org-1");
}

#[test]
fn gc_removes_closed_and_idle_benches_within_its_scope_only() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFG-9", "LIFG-10", "LIFG-12"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFG-9", "closed\n");
    let scope = repo.path_str();
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("LIFG-9").add_issue("LIFG-10");
    for issue in ["LIFG-9", "LIFG-10"] {
        let mut cmd = benchctl();
        cmd.args([
            "deploy",
            "feature/LIFG-9",
            "--issue",
            issue,
            "--repo",
            &scope,
        ]);
        tracker_env(&mut cmd, &tracker);
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    tracker.set_status("LIFG-9", "done");
    // a look-alike without benchctl's labels (from an image without them): never touched
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", "benchctl-test/unlabelled:1", "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    build
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nENV A=1\n")
        .unwrap();
    assert!(build.wait().unwrap().success());
    docker_lines(&[
        "create",
        "--name",
        "benchctl-lifg-9-next-impostor",
        "--label",
        "benchctl.issue=LIFG-9",
        "--label",
        &format!("benchctl.repo={scope}"),
        "benchctl-test/unlabelled:1",
        "x",
    ]);

    let gc = |extra: &[&str]| {
        let mut cmd = benchctl();
        cmd.args(["gc", "--json"]).args(extra);
        tracker_env(&mut cmd, &tracker);
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{}", r.all());
        r.json()
    };
    let other = tempfile::tempdir().unwrap();
    git(other.path(), &["init", "-q"]);
    let none = gc(&[
        "--scope",
        &other.path().to_string_lossy(),
        "--closed-statuses",
        "done",
    ]);
    assert_eq!(
        none,
        serde_json::json!([]),
        "another repository's scope must not see these"
    );

    // default closed status is `closed`: nothing yet
    let planned = gc(&["--scope", &scope, "--dry-run"]);
    assert!(
        planned
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["action"] != "teardown"),
        "{planned}"
    );

    let done = gc(&["--scope", &scope, "--closed-statuses", "closed,done"]);
    let torn: Vec<&str> = done
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "teardown")
        .map(|a| a["target"].as_str().unwrap())
        .collect();
    assert_eq!(torn, vec!["LIFG-9"]);
    assert_eq!(
        issue_containers("LIFG-9").len(),
        1,
        "only the unlabelled look-alike may remain"
    );
    assert!(issue_containers("LIFG-9")[0].contains("benchctl-lifg-9-next-impostor"));
    assert!(docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=LIFG-9"]).is_empty());
    assert_eq!(tracker.field("LIFG-9", "benchLink"), None);
    assert_eq!(issue_containers("LIFG-10").len(), 1);

    // a first deploy that failed (its build) leaves only its result; gc removes it
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/LIFG-12-broken"],
    );
    repo.write("Dockerfile", "FROM scratch\nCOPY missing-file /x\n");
    repo.commit("broken");
    let r = run(benchctl().args(["deploy", "feature/LIFG-12-broken", "--repo", &scope]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        all_issue_containers("LIFG-12").len(),
        1,
        "the failed deploy's result"
    );
    let done = gc(&["--scope", &scope]);
    assert!(
        done.as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "remove-result" && a["target"] == "LIFG-12"),
        "{done}"
    );
    assert!(all_issue_containers("LIFG-12").is_empty());

    // TTL: LIFG-10 is idle for longer than 1 s
    std::thread::sleep(Duration::from_secs(2));
    let done = gc(&["--scope", &scope, "--ttl", "1s"]);
    assert!(
        done.as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "teardown" && a["target"] == "LIFG-10"),
        "{done}"
    );
    assert!(issue_containers("LIFG-10").is_empty());
    let _ = Command::new("docker")
        .args(["rm", "-f", "benchctl-lifg-9-next-impostor"])
        .output();
    let _ = Command::new("docker")
        .args(["rmi", "-f", "benchctl-test/unlabelled:1"])
        .output();
}

#[test]
fn gc_removes_cached_clones_unused_for_long() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFH-11", "cached\n");
    let served = Served::new(&repo);
    let url = served.url.clone();
    let cache = tempfile::tempdir().unwrap();
    let spec = benchctl::git::resolve_repo(Some(&url)).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let reporter: benchctl::output::SharedReporter = std::sync::Arc::new(benchctl::output::Silent);
    benchctl::git::fetch_branch(
        &spec,
        "feature/LIFH-11",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap();
    let clone = benchctl::git::cache_path(cache.path(), &spec);
    assert!(clone.is_dir());
    let gc = |extra: &[&str]| {
        let r = run(benchctl()
            .args([
                "gc",
                "--json",
                "--cache-dir",
                &cache.path().to_string_lossy(),
            ])
            .args(extra));
        assert_eq!(r.code, 0, "{}", r.all());
        r.json()
    };
    let scope = url.clone();
    assert_eq!(
        gc(&["--scope", &scope]),
        serde_json::json!([]),
        "a fresh clone stays"
    );
    let marker = clone.join("benchctl-last-used");
    let ok = Command::new("touch")
        .args(["-d", "30 days ago"])
        .arg(&marker)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let other = tempfile::tempdir().unwrap();
    git(other.path(), &["init", "-q"]);
    let none = gc(&["--scope", &other.path().to_string_lossy()]);
    assert_eq!(
        none,
        serde_json::json!([]),
        "another repository's clone is out of scope"
    );
    let planned = gc(&["--scope", &scope, "--dry-run"]);
    assert_eq!(planned[0]["action"], "remove-clone", "{planned}");
    assert!(clone.is_dir(), "--dry-run removed the clone");
    // in use (locked by a fetch): left alone
    let held = benchctl::git::FileLock::try_exclusive(&clone.with_extension("lock"))
        .unwrap()
        .unwrap();
    assert_eq!(gc(&["--scope", &scope]), serde_json::json!([]));
    drop(held);
    let done = gc(&["--scope", &scope, "--cache-max-age", "14d"]);
    assert_eq!(done[0]["action"], "remove-clone", "{done}");
    assert!(!clone.exists());
}
