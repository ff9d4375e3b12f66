//! The issue hears of its bench in the Tracker: a failed deploy adds a comment with the branch,
//! the commit and the reason (redacted, cut), the success that follows says the bench is back;
//! `--tracker-comment all` also says every new bench is up; `off` says nothing. Against the
//! fake Tracker (`support/fake_tracker.rs`).

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;

const TOKEN: &str = "oauth-canary-comments-41d2";

fn deploy(repo: &AppRepo, t: &FakeTracker, issue: &str, mode: Option<&str>) -> Run {
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        &format!("feature/{issue}"),
        "--repo",
        &repo.path_str(),
    ])
    .tracker(t, TOKEN, "org-1")
    // a secret of the bench's environment: never in a comment
    .env("TCM_SECRET", "tcm-secret-canary-9d")
    .args(["--env", "TCM_SECRET"]);
    if let Some(m) = mode {
        cmd.args(["--tracker-comment", m]);
    }
    run(&mut cmd)
}

fn comments_of(t: &FakeTracker, issue: &str) -> Vec<String> {
    t.comments()
        .into_iter()
        .filter(|(k, _)| k == issue)
        .map(|(_, text)| text)
        .collect()
}

#[test]
fn a_failed_deploy_is_commented_with_its_reason_and_the_recovery_too() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["TCM-1"]);
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue("TCM-1");
    let repo = AppRepo::new();
    repo.branch_with("feature/TCM-1", "one\n");
    // the first deploy succeeds: nothing to say by default
    let r = deploy(&repo, &t, "TCM-1", None);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(comments_of(&t, "TCM-1").is_empty());

    // a commit that does not build: the comment names branch, commit and the reason, the
    // secret value redacted (the build's error echoes it)
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \
         \"echo tcm-secret-canary-9d; exit 3\"]\n",
    );
    let broken = repo.commit("broken");
    let r = deploy(&repo, &t, "TCM-1", None);
    assert_eq!(r.code, 1, "{}", r.all());
    let c = comments_of(&t, "TCM-1");
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].contains("feature/TCM-1") && c[0].contains(&broken[..12]) && c[0].contains("exit"),
        "{}",
        c[0]
    );
    assert!(!c[0].contains("tcm-secret-canary-9d"), "{}", c[0]);
    // the bench that ran before is said to keep running
    assert!(c[0].contains("keeps running"), "{}", c[0]);

    // fixed: the bench is back
    repo.write("Dockerfile", APP_DOCKERFILE);
    repo.commit("fixed");
    let r = deploy(&repo, &t, "TCM-1", None);
    assert_eq!(r.code, 0, "{}", r.all());
    let c = comments_of(&t, "TCM-1");
    assert_eq!(c.len(), 2, "{c:?}");
    let url = listed("TCM-1")["url"].as_str().unwrap().to_string();
    assert!(
        c[1].contains("is back at") && c[1].contains(&url),
        "{}",
        c[1]
    );
    // a no-op says nothing
    let r = deploy(&repo, &t, "TCM-1", None);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(comments_of(&t, "TCM-1").len(), 2);
}

#[test]
fn all_comments_every_new_bench_and_off_none() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["TCM-2", "TCM-3"]);
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue("TCM-2").add_issue("TCM-3");
    let repo = AppRepo::new();
    repo.branch_with("feature/TCM-2", "two\n");
    let r = deploy(&repo, &t, "TCM-2", Some("all"));
    assert_eq!(r.code, 0, "{}", r.all());
    let c = comments_of(&t, "TCM-2");
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].contains("is up at"), "{}", c[0]);

    repo.write("Dockerfile", "FROM scratch\nCOPY nothing-here /x\n");
    repo.branch_with("feature/TCM-3", "three\n");
    let r = deploy(&repo, &t, "TCM-3", Some("off"));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(comments_of(&t, "TCM-3").is_empty());
}
