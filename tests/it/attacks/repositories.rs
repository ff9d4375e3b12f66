//! Issue 29, low 11: an issue's bench belongs to its repository. A push to repository B's
//! branch carrying the key of a bench deployed from repository A does not replace it, and
//! deleting that branch of B does not tear it down.

use crate::support::serve::*;
use crate::support::*;
use std::time::Duration;

#[test]
fn another_repositorys_branch_neither_replaces_nor_removes_a_bench() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKR-7"]);
    let (a, b) = (AppRepo::new(), AppRepo::new());
    git(a.path(), &["checkout", "-q", "-b", "feature/ATKR-7"]);
    let r = run(benchctl().args([
        "deploy",
        "feature/ATKR-7",
        "--repo",
        &a.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let bench = issue_containers("ATKR-7");
    assert_eq!(bench.len(), 1, "{bench:?}");

    git(b.path(), &["checkout", "-q", "-b", "x/ATKR-7"]);
    b.write("www/index.html", "b\n");
    let commit = b.commit("b's branch of the same key");
    // by hand: refused, naming both repositories
    let r = run(benchctl().args(["deploy", "x/ATKR-7", "--repo", &b.path_str(), "--no-link"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(&a.path_str()) && r.stderr.contains("another repository"),
        "{}",
        r.stderr
    );

    // through serve: a push of B's branch, then its deletion
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .args(&["--gc-interval", "0"])
        .arg("--repo")
        .arg(&format!("acme/app={}", b.path_str()))
        .start();
    let ans = s.github(
        "push",
        "atkr-7-push",
        &github_push("x/ATKR-7", &commit, false),
    );
    assert_eq!(ans.status, 202, "{}", ans.body);
    s.wait_until("the push's job ended", Duration::from_secs(60), |s| {
        s.finished_jobs("failed") + s.finished_jobs("done") >= 1
    });
    let ans = s.github(
        "push",
        "atkr-7-delete",
        &github_push("x/ATKR-7", &commit, true),
    );
    assert_eq!(ans.status, 202, "{}", ans.body);
    s.wait_until("the deletion's job ended", Duration::from_secs(60), |s| {
        s.finished_jobs("failed") + s.finished_jobs("done") >= 2
    });
    assert_eq!(
        issue_containers("ATKR-7"),
        bench,
        "A's bench changed: {}",
        s.log()
    );
    let url = listed("ATKR-7")["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"), "{}", s.log());
}
