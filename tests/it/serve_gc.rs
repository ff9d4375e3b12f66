//! serve cleans up by itself (`--gc-interval`): a closed issue's bench is removed with no
//! command, as a queued job counted in `/metrics`; an open issue's bench stays, and the
//! dashboard shows its TTL.

use crate::support::serve::*;
use crate::support::*;
use std::time::Duration;

#[test]
fn serve_removes_a_closed_issues_bench_without_any_command() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["GCS-1", "GCS-2"]);
    let t = serve_tracker();
    t.add_issue("GCS-1").add_issue("GCS-2");
    let repo = AppRepo::new();
    for key in ["GCS-1", "GCS-2"] {
        let branch = format!("feature/{key}");
        repo.branch_with(&branch, &format!("{key}\n"));
        let r = run(benchctl().args(["deploy", &branch, "--repo", &repo.path_str(), "--no-link"]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    t.set_status("GCS-1", "closed");
    let state = tempfile::tempdir().unwrap();
    let own = free_port();
    let s = ServeSetup::new(Some(&t), state.path())
        .args(&["--gc-interval", "1s", "--ttl", "7d"])
        .args(&[
            "--dashboard",
            "--dashboard-listen",
            &format!("127.0.0.1:{own}"),
        ])
        .start();
    s.wait_until("GCS-1's bench is gone", Duration::from_secs(60), |_| {
        issue_containers("GCS-1").is_empty()
    });
    s.wait_until("the clean-up is counted", Duration::from_secs(30), |s| {
        s.metric("benchctl_jobs_total{kind=\"gc\",result=\"done\"}") >= 1
    });
    assert!(
        s.metric("benchctl_gc_actions_total{action=\"teardown\"}") >= 1,
        "{}",
        s.get("/metrics").body
    );
    assert_eq!(
        issue_containers("GCS-2").len(),
        1,
        "the open issue's bench stays"
    );
    assert!(s.log().contains("[(gc)]"), "{}", s.log());
    // the dashboard shows how long the open issue's bench has left (7 days, counted from its
    // deploy)
    let page = http(&format!("127.0.0.1:{own}"), "GET", "/", &[], b"").body;
    assert!(page.contains("TTL left") && page.contains(">6d<"), "{page}");
}
