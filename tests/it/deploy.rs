//! deploy / list / teardown through the real binary, against the real engine and the fake
//! Tracker. Each test uses its own issue keys and removes what it creates.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use serde_json::Value;

const TOKEN: &str = "oauth-canary-7f3e9d1c55";
const IAM: &str = "iam-canary-0a9b8c7d6e";

fn with_tracker(cmd: &mut std::process::Command, t: &FakeTracker) {
    cmd.tracker(t, TOKEN, "org-1");
}

/// A test's issue: its cleanup, a repository with the issue branch, and a fake Tracker that
/// knows the issue.
struct Fixture {
    _cleanup: Cleanup,
    repo: AppRepo,
    tracker: FakeTracker,
    branch: String,
}

impl Fixture {
    fn new(key: &str, branch: &str, content: &str) -> Self {
        require_docker();
        let cleanup = Cleanup::issues(&[key]);
        let repo = AppRepo::new();
        repo.branch_with(branch, content);
        let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
        tracker.add_issue(key);
        Fixture {
            _cleanup: cleanup,
            repo,
            tracker,
            branch: branch.to_string(),
        }
    }

    /// `benchctl deploy <branch> --repo <repo> <extra>` with the fake Tracker configured.
    fn deploy(&self, extra: &[&str]) -> Run {
        let mut cmd = benchctl();
        cmd.args(["deploy", &self.branch, "--repo", &self.repo.path_str()])
            .args(extra);
        with_tracker(&mut cmd, &self.tracker);
        run(&mut cmd)
    }
}

#[test]
fn deploy_from_local_path_serves_the_branch_and_links_it() {
    let _group = crate::support::group(module_path!());
    let f = Fixture::new("DEPA-1", "feature/DEPA-1-login", "hello from DEPA-1\n");
    let tracker = &f.tracker;
    let commit = git(f.repo.path(), &["rev-parse", "HEAD"]);
    let r = f.deploy(&["--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v = r.json();
    assert_eq!(v["issue"], "DEPA-1");
    assert_eq!(v["branch"], "feature/DEPA-1-login");
    assert_eq!(v["commit"], commit.as_str());
    assert_eq!(v["container"], "benchctl-depa-1");
    assert_eq!(v["linked"], true);
    assert!(v["image"].as_str().unwrap().starts_with("benchctl/depa-1:"));
    let url = v["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(http_get(&url).as_deref(), Some("hello from DEPA-1\n"));
    // --json prints nothing but the result
    assert!(
        r.stderr.trim().is_empty(),
        "stderr with --json: {}",
        r.stderr
    );

    // The field holds the address, set with the contract's headers.
    assert_eq!(
        tracker.field("DEPA-1", "benchLink"),
        Some(Value::String(url.clone()))
    );
    let patch = tracker
        .requests_for("DEPA-1")
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH");
    assert_eq!(patch.headers["authorization"], format!("OAuth {TOKEN}"));
    assert_eq!(patch.headers["x-org-id"], "org-1");
    assert!(!patch.headers.contains_key("x-cloud-org-id"));
    assert!(patch.headers["content-type"].starts_with("application/json"));
    assert_eq!(patch.body, Some(serde_json::json!({ "benchLink": url })));

    // Labels, restart policy and limits on the container.
    let inspect = docker_lines(&[
        "inspect",
        "benchctl-depa-1",
        "--format",
        "{{json .Config.Labels}}|{{.HostConfig.RestartPolicy.Name}}|{{.HostConfig.Memory}}|{{.HostConfig.NanoCpus}}|{{.HostConfig.PidsLimit}}",
    ]);
    let parts: Vec<&str> = inspect[0].split('|').collect();
    let labels: Value = serde_json::from_str(parts[0]).unwrap();
    assert_eq!(labels["benchctl.managed"], "true");
    assert_eq!(labels["benchctl.issue"], "DEPA-1");
    assert_eq!(labels["benchctl.branch"], "feature/DEPA-1-login");
    assert_eq!(labels["benchctl.commit"], commit.as_str());
    assert_eq!(parts[1], "unless-stopped");
    assert_eq!(parts[2], (512u64 << 20).to_string());
    assert_eq!(parts[3], "1000000000");
    assert_eq!(parts[4], "256");
    // Nothing of the token in what benchctl created.
    let all = docker_lines(&["inspect", "benchctl-depa-1"]).join("\n");
    assert!(!all.contains(TOKEN));
}

#[test]
fn deploy_over_git_daemon_with_iam_token_and_cloud_org() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPB-2"]);
    let repo = AppRepo::new();
    repo.branch_with("bugfix/depb-2-lower-case", "over git://\n");
    let served = Served::new(&repo);
    let tracker = FakeTracker::start(Auth::Iam(IAM), Org::Cloud("cloud-9"));
    tracker.add_issue("DEPB-2");

    let r = run(benchctl()
        .args(["deploy", "bugfix/depb-2-lower-case", "--repo", &served.url])
        .env("BENCHCTL_TRACKER_URL", &tracker.url)
        .env("BENCHCTL_TRACKER_IAM_TOKEN", IAM)
        .env("BENCHCTL_TRACKER_CLOUD_ORG_ID", "cloud-9"));
    assert_eq!(r.code, 0, "{}", r.all());
    // plain output: phases on stderr, the result on stdout
    assert!(r.stderr.contains("==> building"), "{}", r.stderr);
    assert!(
        r.stdout.contains("DEPB-2 is up at http://127.0.0.1:"),
        "{}",
        r.stdout
    );
    let url = tracker.field("DEPB-2", "benchLink").unwrap();
    assert_eq!(
        http_get(url.as_str().unwrap()).as_deref(),
        Some("over git://\n")
    );
    let patch = tracker.requests_for("DEPB-2").pop().unwrap();
    assert_eq!(patch.headers["authorization"], format!("Bearer {IAM}"));
    assert_eq!(patch.headers["x-cloud-org-id"], "cloud-9");
    assert!(!patch.headers.contains_key("x-org-id"));
    assert!(!r.all().contains(IAM));
}

#[test]
fn redeploy_replaces_the_bench_with_the_new_commit() {
    let _group = crate::support::group(module_path!());
    let f = Fixture::new("DEPC-3", "feature/DEPC-3", "v1\n");
    let (repo, tracker) = (&f.repo, &f.tracker);
    let deploy = || {
        let r = f.deploy(&["--json"]);
        assert_eq!(r.code, 0, "{}", r.all());
        r.json()
    };
    let first = deploy();
    let c2 = repo.branch_with("feature/DEPC-3", "v2\n");
    let second = deploy();
    assert_eq!(second["commit"], c2.as_str());
    let url = second["url"].as_str().unwrap();
    assert_eq!(http_get(url).as_deref(), Some("v2\n"));
    assert_ne!(first["image"], second["image"]);
    let containers = issue_containers("DEPC-3");
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(
        containers[0].contains("benchctl-depc-3 running"),
        "{containers:?}"
    );
    assert_eq!(tracker.field("DEPC-3", "benchLink"), Some(Value::from(url)));
    // the old image is gone, the new one stays
    let images = docker_lines(&[
        "images",
        "--filter",
        "label=benchctl.issue=DEPC-3",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(images, vec![second["image"].as_str().unwrap().to_string()]);
}

#[test]
fn branch_without_key_is_refused_before_any_work() {
    let _group = crate::support::group(module_path!());
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    let repo = AppRepo::new();
    for branch in ["feature/login", "main"] {
        let mut cmd = benchctl();
        cmd.args(["deploy", branch, "--repo", &repo.path_str()]);
        with_tracker(&mut cmd, &tracker);
        let r = run(&mut cmd);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr
                .contains(&format!("branch `{branch}` carries no issue key")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("--issue"), "{}", r.stderr);
    }
    assert!(tracker.requests().is_empty(), "no Tracker request expected");
    // hostile names are refused as ref names, before anything else
    for bad in ["../x", "-rf", "a b;rm -rf /", "$(id)..x"] {
        let r = run(benchctl().args(["deploy", "--repo", &repo.path_str(), "--", bad]));
        assert_eq!(r.code, 2, "{bad}: {}", r.all());
    }
}

#[test]
fn missing_branch_names_branch_and_repository() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["NOPE-1"]);
    let repo = AppRepo::new();
    let r = run(benchctl().args(["deploy", "feature/NOPE-1-gone", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("feature/NOPE-1-gone"), "{}", r.stderr);
    assert!(r.stderr.contains(&repo.path_str()), "{}", r.stderr);
    assert!(issue_containers("NOPE-1").is_empty());
}

#[test]
fn failing_build_shows_the_engine_error_and_starts_nothing() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPD-4"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/DEPD-4", "x\n");
    repo.write("Dockerfile", "FROM scratch\nCOPY does-not-exist /x\n");
    repo.commit("broken");
    let r = run(benchctl().args(["deploy", "feature/DEPD-4", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("build of DEPD-4"), "{}", r.stderr);
    assert!(
        r.stderr.contains("does-not-exist"),
        "engine error missing: {}",
        r.stderr
    );
    assert!(issue_containers("DEPD-4").is_empty());
}

#[test]
fn container_that_exits_at_once_fails_and_is_removed_with_its_logs_shown() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPE-5"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/DEPE-5", "x\n");
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo crash-marker-DEPE; exit 3\"]\n",
    );
    repo.commit("crashes");
    let r = run(benchctl().args([
        "deploy",
        "feature/DEPE-5",
        "--repo",
        &repo.path_str(),
        "--ready-timeout",
        "20",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("did not become ready"), "{}", r.stderr);
    assert!(
        r.stderr.contains("crash-marker-DEPE"),
        "logs missing: {}",
        r.stderr
    );
    assert!(
        issue_containers("DEPE-5").is_empty(),
        "{:?}",
        issue_containers("DEPE-5")
    );
}

#[test]
fn tracker_refusals_keep_the_bench_exit_3_and_hide_the_token() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPF-6"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/DEPF-6", "kept\n");
    let tracker = FakeTracker::start(Auth::OAuth("the-right-token"), Org::Org("org-1"));
    tracker.add_issue("DEPF-6");

    // a deploy of the branch with the right token, and `extra` arguments
    let deploy = |extra: &[&str]| {
        run(benchctl()
            .args(["deploy", "feature/DEPF-6", "--repo", &repo.path_str()])
            .args(extra)
            .tracker(&tracker, "the-right-token", "org-1"))
    };

    // 401 on the PATCH (e.g. a token that expired during the deploy): bench kept, exit 3
    tracker.fail_next_method("PATCH", 401);
    let r = deploy(&[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("401"), "{}", r.stderr);
    assert!(
        r.stderr.contains("DEPF-6") && r.stderr.contains("benchLink"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("injected fault"), "{}", r.stderr);
    assert!(
        !r.all().contains("the-right-token"),
        "token leaked: {}",
        r.all()
    );
    assert_eq!(issue_containers("DEPF-6").len(), 1);
    let url = r
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    assert_eq!(http_get(&url).as_deref(), Some("kept\n"));

    // 422: unknown field (right token)
    let r = deploy(&["--field", "noSuchField", "--json"]);
    assert_eq!(r.code, 3, "{}", r.all());
    let v = r.json();
    assert_eq!(v["linked"], false);
    let err = v["link_error"].as_str().unwrap();
    assert!(
        err.contains("422") && err.contains("noSuchField") && err.contains("Field does not exist."),
        "{err}"
    );
    assert!(
        !r.all().contains("the-right-token"),
        "token leaked: {}",
        r.all()
    );
    assert_eq!(issue_containers("DEPF-6").len(), 1);

    // 503 on the PATCH: retried, and the wait is said (which answer, when, which try)
    tracker.fail_next_method("PATCH", 503);
    repo.write("www/index.html", "retried\n");
    repo.commit("retried");
    let r = deploy(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let notice = r
        .stderr
        .lines()
        .find(|l| l.contains("Tracker answered 503"))
        .unwrap_or_else(|| panic!("no retry notice: {}", r.stderr));
    assert!(
        notice.contains("DEPF-6") && notice.contains("retrying in ") && notice.contains("(2 of 5)"),
        "{notice}"
    );
}

#[test]
fn list_and_teardown_twice() {
    let _group = crate::support::group(module_path!());
    let f = Fixture::new("DEPG-7", "feature/DEPG-7-list", "listed\n");
    let tracker = &f.tracker;
    let deployed = f.deploy(&["--json"]);
    assert_eq!(deployed.code, 0, "{}", deployed.all());
    let deployed = deployed.json();

    let r = run(benchctl().args(["list", "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let rows = r.json();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["issue"] == "DEPG-7")
        .expect("DEPG-7 listed");
    for k in ["issue", "branch", "commit", "image", "container", "url"] {
        assert_eq!(row[k], deployed[k], "{k}");
    }
    assert_eq!(row["state"], "running");
    let r = run(benchctl().args(["list"]));
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("DEPG-7") && l.contains("feature/DEPG-7-list")),
        "{}",
        r.stdout
    );

    let mut cmd = benchctl();
    cmd.args(["teardown", "DEPG-7"]);
    with_tracker(&mut cmd, tracker);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("removed 1 container"), "{}", r.stdout);
    assert!(issue_containers("DEPG-7").is_empty());
    assert!(docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=DEPG-7"]).is_empty());
    assert_eq!(tracker.field("DEPG-7", "benchLink"), None);
    let clear = tracker.requests_for("DEPG-7").pop().unwrap();
    assert_eq!(clear.body, Some(serde_json::json!({ "benchLink": null })));

    // second teardown: nothing to remove, still fine
    let mut cmd = benchctl();
    cmd.args(["teardown", "depg-7", "--keep-link"]);
    with_tracker(&mut cmd, tracker);
    let before = tracker.requests().len();
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("DEPG-7 has no bench"), "{}", r.stdout);
    assert_eq!(
        tracker.requests().len(),
        before,
        "--keep-link must not touch the Tracker"
    );
}

#[test]
fn no_tracker_configured_deploys_and_says_not_linked() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPH-8"]);
    let repo = AppRepo::new();
    repo.branch_with("DEPH-8", "unlinked\n");
    let r = run(benchctl().args(["deploy", "DEPH-8", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("not linked in the Tracker: no Tracker is configured"),
        "{}",
        r.stdout
    );
    // half a configuration is an error, before any work
    let r = run(benchctl()
        .args(["deploy", "DEPH-8", "--repo", &repo.path_str()])
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "1")
        .env("BENCHCTL_TRACKER_CLOUD_ORG_ID", "2"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("BENCHCTL_TRACKER_ORG_ID")
            && r.stderr.contains("BENCHCTL_TRACKER_CLOUD_ORG_ID"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains(TOKEN));
}

#[test]
fn failed_redeploy_keeps_the_old_bench_and_link() {
    let _group = crate::support::group(module_path!());
    let f = Fixture::new("DEPI-9", "feature/DEPI-9", "good\n");
    let (repo, tracker) = (&f.repo, &f.tracker);
    let r = f.deploy(&["--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();

    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"false\"]\n",
    );
    repo.commit("breaks");
    let r = f.deploy(&["--ready-timeout", "20"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("previous bench keeps running"),
        "{}",
        r.stderr
    );
    assert_eq!(http_get(&url).as_deref(), Some("good\n"));
    assert_eq!(
        tracker.field("DEPI-9", "benchLink"),
        Some(Value::from(url.as_str()))
    );
    let containers = issue_containers("DEPI-9");
    assert_eq!(containers.len(), 1, "{containers:?}");

    // a new commit that runs but never answers: the old bench keeps serving
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"sleep\", \"600\"]\n",
    );
    repo.commit("never answers");
    let r = f.deploy(&["--ready-timeout", "3"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("not ready within 3 s"), "{}", r.stderr);
    assert_eq!(http_get(&url).as_deref(), Some("good\n"));
    assert_eq!(tracker.field("DEPI-9", "benchLink"), Some(Value::from(url)));
    assert_eq!(issue_containers("DEPI-9").len(), 1);
}

#[test]
fn a_bad_token_or_unknown_issue_fails_fast_with_nothing_started() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DEPJ-10", "DEPJ-11"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/DEPJ-10", "x\n");
    // a build that would take 30 s: the refusal must stop it
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"30\"]\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\"]\n",
    );
    repo.commit("slow build");
    let tracker = FakeTracker::start(Auth::OAuth("the-right-token"), Org::Org("org-1"));
    tracker.add_issue("DEPJ-10");

    // wrong token: 401 on the check
    let mut cmd = benchctl();
    cmd.args(["deploy", "feature/DEPJ-10", "--repo", &repo.path_str()]);
    with_tracker(&mut cmd, &tracker);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("401") && r.stderr.contains("DEPJ-10"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Not authorized."), "{}", r.stderr);
    assert!(!r.all().contains(TOKEN), "token leaked: {}", r.all());

    // right token, unknown issue: 404 on the check
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/DEPJ-10",
            "--issue",
            "DEPJ-11",
            "--repo",
            &repo.path_str(),
        ])
        .tracker(&tracker, "the-right-token", "org-1"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("404") && r.stderr.contains("Issue does not exist."),
        "{}",
        r.stderr
    );

    for key in ["DEPJ-10", "DEPJ-11"] {
        assert!(issue_containers(key).is_empty(), "{key} started something");
        let images = docker_lines(&[
            "images",
            "-q",
            "--filter",
            &format!("label=benchctl.issue={key}"),
        ]);
        assert!(
            images.is_empty(),
            "{key}: the build was not stopped: {images:?}"
        );
        assert!(tracker.requests_for(key).iter().all(|r| r.method == "GET"));
    }
}
