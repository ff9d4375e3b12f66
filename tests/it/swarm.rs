//! The swarm backend on a real single-node swarm (initialised here when the engine is not in
//! one, and left again when the last test is done): deploy, in-place update, a failing new
//! version rolled back while the old one keeps serving, no-op redeploys, list, status, logs,
//! teardown, gc, concurrent and interrupted deploys, serve. The registry, the routes in and
//! sleeping are in swarm_registry.rs, swarm_routes.rs and swarm_sleep.rs (the same group).

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::swarm::*;
use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A new version that exits at once.
const CRASHING_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"false\"]\n";

/// A new version that runs but never answers on its port.
const DEAF_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"9999\", \"-h\", \"/www\"]\n";

/// Polls `url` until stopped; returns what each poll got.
struct Poller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Option<String>>>>,
}

impl Poller {
    fn start(url: &str) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, url) = (stop.clone(), url.to_string());
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !s.load(Ordering::SeqCst) {
                seen.push(http_get(&url));
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        Poller {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<Option<String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

#[test]
fn a_bench_is_a_service_updated_in_place_and_rolled_back_when_the_new_version_fails() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWA-1"]);
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("SWA-1");
    let repo = swarm_app();

    // first deploy: a one-replica service with benchctl's labels, limits, health check
    let mut cmd = swarm_cmd();
    tracker_env(&mut cmd, &tracker);
    let r = deploy(&mut cmd, &repo, "SWA-1", 20, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let first = r.json();
    let url = first["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"), "{url}");
    assert_eq!(
        tracker.field("SWA-1", "benchLink"),
        Some(Value::String(url.clone()))
    );
    let svc = service_of("SWA-1").expect("a service");
    let spec = &svc["Spec"];
    let id = svc["ID"].as_str().unwrap().to_string();
    assert_eq!(spec["Name"], "benchctl-swa-1");
    assert_eq!(spec["Labels"]["benchctl.managed"], "true");
    assert_eq!(spec["Labels"]["benchctl.commit"], first["commit"]);
    assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 1);
    let res = &spec["TaskTemplate"]["Resources"];
    assert_eq!(res["Limits"]["MemoryBytes"], 64 << 20);
    assert_eq!(res["Reservations"]["MemoryBytes"], 64 << 20);
    assert_eq!(res["Limits"]["NanoCPUs"], 100_000_000);
    assert_eq!(res["Reservations"]["NanoCPUs"], 100_000_000);
    assert_eq!(spec["TaskTemplate"]["RestartPolicy"]["Condition"], "any");
    let health = &spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Test"];
    assert_eq!(health[0], "CMD", "{health}");
    assert!(
        health.to_string().contains("http://127.0.0.1:8080/"),
        "{health}"
    );
    assert_eq!(spec["UpdateConfig"]["Order"], "start-first");
    assert_eq!(spec["UpdateConfig"]["FailureAction"], "rollback");

    // the same commit again: nothing to do
    let mut cmd = swarm_cmd();
    tracker_env(&mut cmd, &tracker);
    let r = deploy(&mut cmd, &repo, "SWA-1", 20, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["action"], "unchanged");

    // a new commit updates the same service; the old version serves until the new one answers
    repo.write("www/index.html", "v2\n");
    let v2 = repo.commit("v2");
    let poll = Poller::start(&url);
    let mut cmd = swarm_cmd();
    tracker_env(&mut cmd, &tracker);
    let r = deploy(&mut cmd, &repo, "SWA-1", 20, &[]);
    let seen = poll.finish();
    assert_eq!(r.code, 0, "{}", r.all());
    let second = r.json();
    assert_eq!(second["action"], "deployed");
    assert_eq!(second["commit"], v2);
    let url2 = second["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url2).as_deref(), Some("v2\n"));
    assert_eq!(
        service_of("SWA-1").unwrap()["ID"],
        id.as_str(),
        "updated in place"
    );
    // the old task answers until the new one is healthy; then it stops (in host mode its port
    // goes with it) and nothing else ever answers there
    let answered = seen.iter().take_while(|s| s.is_some()).count();
    assert!(answered > 0, "{seen:?}");
    assert!(
        seen[..answered]
            .iter()
            .all(|s| s.as_deref() == Some("main\n"))
            && seen[answered..].iter().all(Option::is_none),
        "the old version answered until it was replaced: {seen:?}"
    );
    assert_eq!(
        tracker.field("SWA-1", "benchLink"),
        Some(Value::String(url2.clone()))
    );

    // a new version that crashes, then one that never answers: the swarm goes back, and the
    // running version answers all through
    for (app, what) in [(CRASHING_APP, "crashing"), (DEAF_APP, "deaf")] {
        repo.write("Dockerfile", app);
        repo.commit(what);
        let poll = Poller::start(&url2);
        let mut cmd = swarm_cmd();
        tracker_env(&mut cmd, &tracker);
        let r = deploy(&mut cmd, &repo, "SWA-1", 6, &[]);
        let seen = poll.finish();
        assert_eq!(r.code, 1, "the {what} version must fail: {}", r.all());
        assert!(r.all().contains("did not become ready"), "{}", r.all());
        assert!(
            r.all().contains("previous bench keeps running"),
            "{}",
            r.all()
        );
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|s| s.as_deref() == Some("v2\n")),
            "the {what} version interrupted the running one: {seen:?}"
        );
        let svc = service_of("SWA-1").unwrap();
        assert_eq!(svc["ID"], id.as_str());
        assert_eq!(svc["Spec"]["Labels"]["benchctl.commit"], v2.as_str());
        assert_eq!(http_get(&url2).as_deref(), Some("v2\n"));
        assert_eq!(
            tracker.field("SWA-1", "benchLink"),
            Some(Value::String(url2.clone())),
            "the link still points at the running version"
        );
    }

    // list, status and logs read the service
    let r = run(swarm_cmd().args(["--json", "list"]));
    let rows = r.json();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["issue"] == "SWA-1")
        .unwrap_or_else(|| panic!("SWA-1 not listed: {}", r.stdout));
    assert_eq!(row["commit"], v2.as_str());
    assert_eq!(row["url"], url2.as_str());
    assert!(
        row["state"].as_str().unwrap().starts_with("running"),
        "{row}"
    );
    let r = run(swarm_cmd().args(["--json", "status", "SWA-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let st = r.json();
    assert_eq!(st["bench"]["commit"], v2.as_str());
    assert_eq!(st["last_deploy"]["result"], "failed");
    let r = run(swarm_cmd().args(["logs", "SWA-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("bench-started"), "{}", r.all());
    // the docker backend does not see swarm benches as containers
    let r = run(benchctl().args(["--json", "list"]));
    assert!(!r.stdout.contains("SWA-1"), "{}", r.stdout);

    // teardown removes the service, its images and the link
    let mut cmd = swarm_cmd();
    tracker_env(&mut cmd, &tracker);
    let r = run(cmd.args(["teardown", "SWA-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(service_of("SWA-1").is_none());
    assert_eq!(http_get(&url2), None);
    assert_eq!(tracker.field("SWA-1", "benchLink"), None);
    let images = docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=SWA-1"]);
    assert!(images.is_empty(), "images left: {images:?}");
}

#[test]
fn gc_removes_swarm_benches_of_closed_issues_and_nothing_else() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWG-1", "SWG-2"]);
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("SWG-1").add_issue("SWG-2");
    let repo = swarm_app();
    for issue in ["SWG-1", "SWG-2"] {
        let mut cmd = swarm_cmd();
        tracker_env(&mut cmd, &tracker);
        let r = deploy(&mut cmd, &repo, issue, 20, &[]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let kept_url = listed_swarm("SWG-2")["url"].as_str().unwrap().to_string();
    // a service benchctl does not own, on the same swarm
    let foreign = format!("not-benchctl-{}", std::process::id());
    let out = Command::new("docker")
        .args(["service", "create", "-d", "--name", &foreign])
        .args([
            "--label",
            "benchctl.issue=SWG-1",
            "benchctl/sw-foreign:none",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tracker.set_status("SWG-1", "closed");

    let mut cmd = swarm_cmd();
    tracker_env(&mut cmd, &tracker);
    let r = run(cmd.args(["--json", "gc"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("SWG-1"), "{}", r.stdout);
    assert!(!r.stdout.contains("SWG-2"), "{}", r.stdout);
    let filter = "label=benchctl.issue=SWG-1".to_string();
    let left = docker_lines(&[
        "service",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &filter,
    ]);
    let _ = Command::new("docker")
        .args(["service", "rm", &foreign])
        .output();
    assert_eq!(left, vec![foreign], "only the foreign service is left");
    assert_eq!(tracker.field("SWG-1", "benchLink"), None);
    assert_eq!(http_get(&kept_url).as_deref(), Some("main\n"));
}

#[test]
fn concurrent_deploys_of_one_issue_take_turns_on_the_swarm() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWL-1"]);
    let repo = swarm_app();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = swarm_cmd();
            let repo = repo.path_str();
            cmd.args([
                "--json", "deploy", "main", "--repo", &repo, "--issue", "SWL-1",
            ])
            .args(["--no-link", "--cpus", "0.1", "--memory", "64m"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut actions: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_str(&text).unwrap();
            v["action"].as_str().unwrap().to_string()
        })
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        ["deployed", "unchanged"],
        "one deployed, the other found it done"
    );
    assert!(service_of("SWL-1").is_some());
}

#[test]
fn an_interrupted_update_goes_back_to_the_running_version() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWI-1"]);
    let repo = swarm_app();
    let r = deploy(&mut swarm_cmd(), &repo, "SWI-1", 20, &["--no-link"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let first = r.json();
    let url = first["url"].as_str().unwrap().to_string();
    // a new version that never answers, interrupted while the swarm updates to it
    repo.write("Dockerfile", DEAF_APP);
    repo.commit("deaf");
    let poll = Poller::start(&url);
    let mut cmd = swarm_cmd();
    let path = repo.path_str();
    cmd.args([
        "deploy",
        "main",
        "--repo",
        &path,
        "--issue",
        "SWI-1",
        "--no-link",
    ])
    .args(["--cpus", "0.1", "--memory", "64m", "--ready-timeout", "60"])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while service_of("SWI-1").unwrap()["Spec"]["Labels"]["benchctl.commit"] == first["commit"] {
        assert!(Instant::now() < deadline, "the update never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let seen = poll.finish();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let svc = service_of("SWI-1").unwrap();
    assert_eq!(
        svc["Spec"]["Labels"]["benchctl.commit"], first["commit"],
        "back to the running version: {stderr}"
    );
    assert!(
        seen.iter().all(|s| s.as_deref() == Some("main\n")),
        "the running version answered all through: {seen:?}"
    );
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
    let r = run(swarm_cmd().args(["--json", "status", "SWI-1"]));
    assert_eq!(r.json()["bench"]["commit"], first["commit"]);
}

#[test]
fn serve_deploys_pushes_as_services_and_a_close_removes_them() {
    let _group = crate::support::group(module_path!());
    use crate::support::serve::{fixture_json, ServeSetup, ORG, TOKEN as SERVE_TOKEN};
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWS-1"]);
    let t = FakeTracker::start(Auth::OAuth(SERVE_TOKEN), Org::Org(ORG));
    t.add_issue("SWS-1");
    let repo = swarm_app();
    let commit = repo.branch_with("feature/SWS-1-shop", "served\n");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .arg("--ready-timeout")
        .arg("20")
        .env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host")
        .start();
    let mut push = fixture_json("github/push.json");
    push["ref"] = Value::String("refs/heads/feature/SWS-1-shop".into());
    push["deleted"] = Value::Bool(false);
    push["after"] = Value::String(commit);
    push["repository"]["full_name"] = Value::String("acme/app".into());
    let a = s.github("push", "sws-1", &serde_json::to_vec(&push).unwrap());
    assert_eq!(a.status, 202, "{}", a.body);
    let link = |t: &FakeTracker| {
        t.field("SWS-1", "benchLink")
            .and_then(|v| v.as_str().map(String::from))
    };
    s.wait_until("SWS-1 is linked", Duration::from_secs(90), |_| {
        link(&t).is_some()
    });
    assert_eq!(http_get(&link(&t).unwrap()).as_deref(), Some("served\n"));
    assert!(service_of("SWS-1").is_some(), "a service, not a container");

    t.set_status("SWS-1", "closed");
    let a = s.tracker_close("SWS-1");
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("SWS-1's service is gone", Duration::from_secs(60), |_| {
        service_of("SWS-1").is_none()
    });
    s.wait_until("SWS-1's link is cleared", Duration::from_secs(30), |_| {
        link(&t).is_none()
    });
}

#[test]
fn where_benches_run_is_not_a_branch_s_choice() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let repo = AppRepo::new();
    repo.write("benchctl.toml", "backend = \"swarm\"\n");
    repo.commit("config");
    let r = run(benchctl().args([
        "deploy",
        "main",
        "--repo",
        &repo.path_str(),
        "--issue",
        "SWC-1",
        "--no-link",
    ]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("`backend`"), "{}", r.stderr);
    assert!(r.stderr.contains("--backend"), "{}", r.stderr);
    // a local config chooses it, and `config` says so
    let local = tempfile::tempdir().unwrap();
    let file = local.path().join("local.toml");
    std::fs::write(&file, "backend = \"swarm\"\npublish-mode = \"host\"\n").unwrap();
    let r = run(benchctl()
        .args(["config", "--config"])
        .arg(&file)
        .args(["--registry", "reg.example.com:5000"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let line = |key: &str| {
        r.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {}", r.stdout))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("backend"),
        format!("backend swarm --config {}", file.display())
    );
    assert_eq!(
        line("publish-mode"),
        format!("publish-mode host --config {}", file.display())
    );
    assert_eq!(
        line("registry"),
        "registry reg.example.com:5000 flag --registry"
    );
    // registry settings without the swarm backend are a mistake, said at once
    let r = run(benchctl().args(["--registry", "reg.example.com", "list"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--backend swarm"), "{}", r.stderr);
}
