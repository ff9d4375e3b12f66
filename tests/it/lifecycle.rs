//! Safe bench lifecycle: no-op redeploys, newest commit wins, one deploy per issue at a time
//! (across real processes), abandoned locks, interruption (SIGTERM, SIGKILL) and recovery
//! (gc's own tests: lifecycle_gc.rs).

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TOKEN: &str = "life-canary-8080aa";

fn tracker_env(cmd: &mut Command, t: &FakeTracker) {
    cmd.tracker(t, TOKEN, "org-1");
}

fn container_id(name: &str) -> String {
    docker_lines(&["inspect", "--format", "{{.Id}}", name]).remove(0)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Run {
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Waits until `docker ps -a` shows a container of `issue` whose name contains `part`.
fn wait_for_container(issue: &str, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !issue_containers(issue).iter().any(|c| c.contains(part)) {
        assert!(
            Instant::now() < deadline,
            "no container `{part}` for {issue}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn slow_app(repo: &AppRepo, delay: u32) {
    repo.write(
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sleep {delay}; exec /bin/busybox httpd -f -p 8080 -h /www\"]\n"
        ),
    );
}

#[test]
fn noop_redeploy_changes_nothing_and_reasserts_the_link() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFA-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFA-1", "same\n");
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("LIFA-1");
    let deploy = |extra: &[&str]| {
        let mut cmd = benchctl();
        cmd.args([
            "deploy",
            "feature/LIFA-1",
            "--repo",
            &repo.path_str(),
            "--json",
        ])
        .args(extra);
        tracker_env(&mut cmd, &tracker);
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{}", r.all());
        r.json()
    };
    let first = deploy(&[]);
    assert_eq!(first["action"], "deployed");
    let id = container_id("benchctl-lifa-1");
    let url = first["url"].as_str().unwrap().to_string();

    let again = deploy(&[]);
    assert_eq!(again["action"], "unchanged");
    assert_eq!(again["url"], url.as_str());
    assert_eq!(
        container_id("benchctl-lifa-1"),
        id,
        "the container was replaced"
    );
    let patches = |t: &FakeTracker| {
        t.requests_for("LIFA-1")
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    assert_eq!(patches(&tracker), 1, "the field already held the address");

    // someone changed the field: the no-op puts the address back
    tracker.put_field("LIFA-1", "benchLink", Value::from("http://elsewhere/"));
    let again = deploy(&[]);
    assert_eq!(again["action"], "unchanged");
    assert_eq!(
        tracker.field("LIFA-1", "benchLink"),
        Some(Value::from(url.as_str()))
    );
    assert_eq!(patches(&tracker), 2);

    // --force rebuilds and replaces
    let forced = deploy(&["--force"]);
    assert_eq!(forced["action"], "deployed");
    assert_ne!(container_id("benchctl-lifa-1"), id);
    assert_eq!(issue_containers("LIFA-1").len(), 1);

    // other settings are not a no-op, but the image of this commit is reused: no fetch, no build
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/LIFA-1",
        "--repo",
        &repo.path_str(),
        "--memory",
        "256m",
    ]);
    tracker_env(&mut cmd, &tracker);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("LIFA-1 is up at"), "{}", r.stdout);
    assert!(r.stderr.contains("nothing to build"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("==> building") && !r.stderr.contains("==> fetching"),
        "{}",
        r.stderr
    );
    let memory = docker_lines(&[
        "inspect",
        "--format",
        "{{.HostConfig.Memory}}",
        "benchctl-lifa-1",
    ]);
    assert_eq!(memory, vec![(256u64 << 20).to_string()]);
}

#[test]
fn an_older_commit_never_replaces_a_newer_one() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFB-2"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/LIFB-2-old"]);
    repo.write("www/index.html", "old\n");
    repo.commit_at("old", "2026-01-01T00:00:00Z");
    git(repo.path(), &["checkout", "-q", "-b", "feature/LIFB-2"]);
    repo.write("www/index.html", "new\n");
    repo.commit_at("new", "2026-02-01T00:00:00Z");

    let deploy = |branch: &str, extra: &[&str]| {
        let r = run(benchctl()
            .args([
                "deploy",
                branch,
                "--issue",
                "LIFB-2",
                "--repo",
                &repo.path_str(),
                "--json",
            ])
            .args(extra));
        assert_eq!(r.code, 0, "{}", r.all());
        r.json()
    };
    let new = deploy("feature/LIFB-2", &[]);
    let old = deploy("feature/LIFB-2-old", &[]);
    assert_eq!(old["action"], "skipped");
    assert_eq!(old["commit"], new["commit"]);
    assert_eq!(
        http_get(new["url"].as_str().unwrap()).as_deref(),
        Some("new\n")
    );
    let forced = deploy("feature/LIFB-2-old", &["--force"]);
    assert_eq!(forced["action"], "deployed");
    assert_eq!(
        http_get(forced["url"].as_str().unwrap()).as_deref(),
        Some("old\n")
    );
}

#[test]
fn concurrent_deploys_of_one_issue_take_turns_and_different_issues_run_together() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFC-3", "LIFC-4", "LIFC-5"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFC-3", "turns\n");
    slow_app(&repo, 1);
    repo.commit("slow start");
    let deploy = |issue: &str| {
        spawn(benchctl().args([
            "deploy",
            "feature/LIFC-3",
            "--issue",
            issue,
            "--repo",
            &repo.path_str(),
            "--json",
        ]))
    };
    let a = deploy("LIFC-3");
    let b = deploy("LIFC-3");
    let c = deploy("LIFC-4");
    let d = deploy("LIFC-5");
    let (a, b, c, d) = (finish(a), finish(b), finish(c), finish(d));
    for r in [&a, &b, &c, &d] {
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let mut actions = vec![
        a.json()["action"].as_str().unwrap().to_string(),
        b.json()["action"].as_str().unwrap().to_string(),
    ];
    actions.sort();
    assert_eq!(
        actions,
        vec!["deployed", "unchanged"],
        "a:{}\nb:{}",
        a.all(),
        b.all()
    );
    for issue in ["LIFC-3", "LIFC-4", "LIFC-5"] {
        let cs = issue_containers(issue);
        assert_eq!(cs.len(), 1, "{issue}: {cs:?}");
        assert!(cs[0].contains("running"), "{cs:?}");
    }
    for issue in ["LIFC-3", "LIFC-4", "LIFC-5"] {
        assert!(!issue_locked(issue), "{issue}'s lock was left behind");
    }
}

fn fake_lock(issue: &str, holder: &str, host_id: &str, pid: u32, since: u64, lease_until: u64) {
    let name = format!("benchctl-lock-{}", issue.to_lowercase());
    let _ = Command::new("docker").args(["rm", "-f", &name]).output();
    let labels = [
        "benchctl.managed=true".to_string(),
        "benchctl.role=lock".to_string(),
        format!("benchctl.issue={issue}"),
        format!("benchctl.lock.holder={holder}"),
        "benchctl.lock.purpose=deploy of feature/x".to_string(),
        format!("benchctl.lock.since={since}"),
        format!("benchctl.lock.lease-until={lease_until}"),
        format!("benchctl.lock.host-id={host_id}"),
        format!("benchctl.lock.pid={pid}"),
        "benchctl.lock.pid-start=1".to_string(),
    ];
    let mut args = vec!["create".to_string(), "--name".into(), name];
    for l in labels {
        args.push("--label".into());
        args.push(l);
    }
    args.push("benchctl/lock:1".into());
    args.push("benchctl-lock".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker_lines(&args);
}

fn this_host_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    format!("{}/{}", boot.trim(), ns.to_string_lossy())
}

#[test]
fn a_held_lock_times_out_naming_its_holder_and_abandoned_locks_are_broken() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFD-6"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFD-6", "locks\n");
    // a first deploy (which also builds the lock image)
    let r = run(benchctl().args(["deploy", "feature/LIFD-6", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 0, "{}", r.all());

    // held by a live runner elsewhere
    fake_lock(
        "LIFD-6",
        "ci@runner-7 pid 4242",
        "elsewhere",
        4242,
        now() - 30,
        now() + 600,
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/LIFD-6",
        "--repo",
        &repo.path_str(),
        "--lock-timeout",
        "1",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("locked by ci@runner-7 pid 4242 (deploy of feature/x) since 20"),
        "{}",
        r.stderr
    );
    let r = run(benchctl().args(["teardown", "LIFD-6", "--lock-timeout", "1"]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(issue_containers("LIFD-6").len(), 1, "the bench must stay");
    assert!(issue_locked("LIFD-6"), "the lock must stay");

    // the same runner's lease ran out: broken
    fake_lock(
        "LIFD-6",
        "ci@runner-7 pid 4242",
        "elsewhere",
        4242,
        now() - 1000,
        now() - 100,
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/LIFD-6",
        "--repo",
        &repo.path_str(),
        "--lock-timeout",
        "1",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("breaking the lock of LIFD-6: its lease ran out"),
        "{}",
        r.stderr
    );

    // a holder on this machine that is gone: broken at once, lease or not
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    fake_lock(
        "LIFD-6",
        "me pid dead",
        &this_host_id(),
        dead_pid,
        now(),
        now() + 600,
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/LIFD-6",
        "--repo",
        &repo.path_str(),
        "--lock-timeout",
        "1",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("is no longer running"), "{}", r.stderr);
    assert_eq!(
        issue_containers("LIFD-6").len(),
        1,
        "{:?}",
        issue_containers("LIFD-6")
    );
}

#[test]
fn sigterm_during_a_redeploy_removes_the_new_container_and_keeps_the_old() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFE-7"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFE-7", "v1\n");
    let r = run(benchctl().args([
        "deploy",
        "feature/LIFE-7",
        "--repo",
        &repo.path_str(),
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();

    repo.write("www/index.html", "v2\n");
    slow_app(&repo, 30);
    repo.commit("v2, slow");
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let child =
            spawn(benchctl().args(["deploy", "feature/LIFE-7", "--repo", &repo.path_str()]));
        wait_for_container("LIFE-7", "-next-");
        let pid = child.id().to_string();
        Command::new("kill").args([signal, &pid]).status().unwrap();
        let r = finish(child);
        assert_eq!(r.code, code, "{}", r.all());
        assert!(r.stderr.contains("interrupted by SIG"), "{}", r.stderr);
        assert!(
            r.stderr.contains("previous bench keeps running"),
            "{}",
            r.stderr
        );
        assert!(!issue_locked("LIFE-7"), "the lock was not released");
    }
    let cs = issue_containers("LIFE-7");
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert!(cs[0].contains("benchctl-life-7 running"), "{cs:?}");
    assert_eq!(http_get(&url).as_deref(), Some("v1\n"));
}

#[test]
fn after_sigkill_gc_and_the_next_deploy_converge_to_one_bench() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFF-8"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFF-8", "v1\n");
    let scope = repo.path_str();
    let r = run(benchctl().args(["deploy", "feature/LIFF-8", "--repo", &scope]));
    assert_eq!(r.code, 0, "{}", r.all());

    // killed while the new container starts: a leftover container and an abandoned lock
    repo.write("www/index.html", "v2\n");
    slow_app(&repo, 30);
    repo.commit("v2, slow");
    let mut child = spawn(benchctl().args(["deploy", "feature/LIFF-8", "--repo", &scope]));
    wait_for_container("LIFF-8", "-next-");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(issue_containers("LIFF-8").len(), 2, "bench and leftover");
    assert!(issue_locked("LIFF-8"));

    let r = run(benchctl().args(["gc", "--scope", &scope, "--dry-run", "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let planned: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect();
    assert!(planned.contains(&"remove-lock".to_string()), "{planned:?}");
    assert!(
        planned.contains(&"remove-container".to_string()),
        "{planned:?}"
    );
    assert_eq!(
        issue_containers("LIFF-8").len(),
        2,
        "--dry-run removed something"
    );
    assert!(issue_locked("LIFF-8"), "--dry-run removed the lock");

    let r = run(benchctl().args(["gc", "--scope", &scope]));
    assert_eq!(r.code, 0, "{}", r.all());
    let images = docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=LIFF-8"]);
    assert_eq!(
        images.len(),
        1,
        "the killed deploy's image is garbage: {images:?}"
    );
    let cs = issue_containers("LIFF-8");
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert!(cs[0].contains("benchctl-liff-8 running"), "{cs:?}");
    assert!(!issue_locked("LIFF-8"));

    // killed while building: only the lock is left; the next deploy breaks it and converges
    repo.write("www/index.html", "v3\n");
    slow_app(&repo, 0);
    repo.commit("v3");
    let mut child = spawn(benchctl().args(["deploy", "feature/LIFF-8", "--repo", &scope]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !issue_locked("LIFF-8") {
        assert!(Instant::now() < deadline, "the deploy never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let r = run(benchctl().args([
        "deploy",
        "feature/LIFF-8",
        "--repo",
        &scope,
        "--json",
        "--lock-timeout",
        "5",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        http_get(r.json()["url"].as_str().unwrap()).as_deref(),
        Some("v3\n")
    );
    let cs = issue_containers("LIFF-8");
    assert_eq!(cs.len(), 1, "{cs:?}");
    assert!(!issue_locked("LIFF-8"));
}

#[test]
fn sigterm_during_a_first_deploy_leaves_nothing_behind() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LIFI-13"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/LIFI-13", "never ready\n");
    slow_app(&repo, 60);
    repo.commit("slow");
    let child = spawn(benchctl().args(["deploy", "feature/LIFI-13", "--repo", &repo.path_str()]));
    wait_for_container("LIFI-13", "benchctl-lifi-13");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let r = finish(child);
    assert_eq!(r.code, 143, "{}", r.all());
    assert!(
        r.stderr.contains("removed the unfinished container"),
        "{}",
        r.stderr
    );
    assert!(
        issue_containers("LIFI-13").is_empty(),
        "{:?}",
        issue_containers("LIFI-13")
    );
    assert!(!issue_locked("LIFI-13"));
}
