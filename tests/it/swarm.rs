//! The swarm backend on a real single-node swarm (initialised here when the engine is not in
//! one, and left again when the last test is done): deploy, in-place update, a failing new
//! version rolled back while the old one keeps serving, no-op redeploys, list, status, logs,
//! teardown, gc, the routing mesh, a registry, and the same deploy on both backends.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::swarm::SwarmGuard;
use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "swarm-canary-5f5f5f";

/// The app prints a line at start (for `logs`) and serves `/www` on 8080.
const SWARM_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo bench-started; exec /bin/busybox httpd -f -p 8080 -h /www\"]\n";

/// A new version that exits at once.
const CRASHING_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"false\"]\n";

/// A new version that runs but never answers on its port.
const DEAF_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"9999\", \"-h\", \"/www\"]\n";

fn swarm_app() -> AppRepo {
    let repo = AppRepo::new();
    repo.write("Dockerfile", SWARM_APP);
    repo.commit("swarm app");
    repo
}

fn tracker_env(cmd: &mut Command, t: &FakeTracker) {
    cmd.env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1");
}

/// `benchctl --backend swarm --publish-mode host ...` (host mode: this engine's routing mesh
/// does not forward).
fn swarm_cmd() -> Command {
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host");
    cmd
}

/// `deploy main` of `repo` as `issue` with small limits; `timeout` seconds to answer.
fn deploy(cmd: &mut Command, repo: &AppRepo, issue: &str, timeout: u32, extra: &[&str]) -> Run {
    let timeout = timeout.to_string();
    let repo = repo.path_str();
    let args = [
        "--json", "deploy", "main", "--repo", &repo, "--issue", issue,
    ];
    run(cmd
        .args(args)
        .args([
            "--cpus",
            "0.1",
            "--memory",
            "64m",
            "--ready-timeout",
            &timeout,
        ])
        .args(extra))
}

fn service_of(issue: &str) -> Option<Value> {
    let filter = format!("label=benchctl.issue={issue}");
    let ids = docker_lines(&["service", "ls", "-q", "--filter", &filter]);
    assert!(ids.len() <= 1, "one service per issue: {ids:?}");
    let id = ids.first()?;
    let out = Command::new("docker")
        .args(["service", "inspect", id])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v[0].clone())
}

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

fn listed_swarm(issue: &str) -> Value {
    listed_by(swarm_cmd(), issue)
}

#[test]
fn the_routing_mesh_either_answers_or_is_named_as_the_reason() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWM-1"]);
    let repo = swarm_app();
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm");
    let r = deploy(&mut cmd, &repo, "SWM-1", 30, &["--no-link"]);
    match r.code {
        // an engine with IPVS: the mesh forwards from every node's port
        0 => {
            let url = r.json()["url"].as_str().unwrap().to_string();
            assert_eq!(http_get(&url).as_deref(), Some("main\n"));
        }
        _ => {
            assert!(r.all().contains("routing mesh"), "{}", r.all());
            assert!(r.all().contains("--publish-mode host"), "{}", r.all());
            assert!(
                service_of("SWM-1").is_none(),
                "the failed first bench is gone"
            );
        }
    }
}

#[test]
fn the_same_deploy_gives_the_same_bench_on_both_backends() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWB-1", "SWB-2", "SWB-3", "SWB-4"]);
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("SWB-1").add_issue("SWB-2");
    let repo = swarm_app();
    let mut results = Vec::new();
    for (issue, backend) in [("SWB-1", "docker"), ("SWB-2", "swarm")] {
        let deploy = || {
            let mut cmd = benchctl();
            tracker_env(&mut cmd, &tracker);
            if backend == "swarm" {
                cmd.env("BENCHCTL_PUBLISH_MODE", "host");
            }
            let repo = repo.path_str();
            let args = [
                "--json", "deploy", "main", "--repo", &repo, "--issue", issue,
            ];
            run(cmd
                .args(["--backend", backend])
                .args(args)
                .args(["--memory", "64m"]))
        };
        let r = deploy();
        assert_eq!(r.code, 0, "{backend}: {}", r.all());
        let v = r.json();
        let url = v["url"].as_str().unwrap().to_string();
        assert_eq!(http_get(&url).as_deref(), Some("main\n"), "{backend}");
        assert_eq!(
            tracker.field(issue, "benchLink"),
            Some(Value::String(url.clone()))
        );
        // again: nothing to do on either backend
        let r = deploy();
        assert_eq!(r.code, 0, "{backend}: {}", r.all());
        assert_eq!(r.json()["action"], "unchanged", "{backend}");
        results.push(v);
    }
    // one issue, one bench: neither backend makes a second one beside the other's
    for (issue, other) in [("SWB-1", "swarm"), ("SWB-2", "docker")] {
        let mut cmd = benchctl();
        cmd.env("BENCHCTL_PUBLISH_MODE", "host");
        if other == "docker" {
            cmd.env_remove("BENCHCTL_PUBLISH_MODE");
        }
        let repo = repo.path_str();
        let args = [
            "deploy",
            "main",
            "--repo",
            &repo,
            "--issue",
            issue,
            "--no-link",
        ];
        let r = run(cmd.args(["--backend", other]).args(args).arg("--force"));
        assert_eq!(r.code, 2, "{other}: {}", r.all());
        assert!(
            r.stderr.contains("one issue gets one bench"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("teardown"), "{}", r.stderr);
    }
    // both backends drop the capabilities a web app does not need: no device nodes
    for filter in [
        "name=benchctl-swb-1",
        "label=com.docker.swarm.service.name=benchctl-swb-2",
    ] {
        let id = docker_lines(&["ps", "-q", "--filter", filter]).remove(0);
        assert!(
            !can_make_device_node(&id),
            "{filter}: a bench made a device node"
        );
    }
    let (a, b) = (&results[0], &results[1]);
    for key in ["action", "branch", "commit", "linked"] {
        assert_eq!(a[key], b[key], "{key}: {a} vs {b}");
    }
    assert_eq!(a["container"], "benchctl-swb-1");
    assert_eq!(b["container"], "benchctl-swb-2");
    let tag = |v: &Value| {
        v["image"]
            .as_str()
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        tag(a),
        tag(b),
        "the same image tag (commit and build settings)"
    );
    // a branch's image claiming a route or a task's identity is refused on the swarm too
    repo.write(
        "Dockerfile",
        &SWARM_APP.replace(
            "EXPOSE",
            "LABEL com.docker.swarm.task.id=x traefik.http.routers.x.rule=Host(`swb-1.x`)\nEXPOSE",
        ),
    );
    repo.commit("claims");
    let r = deploy(&mut swarm_cmd(), &repo, "SWB-3", 20, &["--no-link"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stdout.contains("com.docker.swarm.task.id")
            && r.stdout.contains("traefik.http.routers.x.rule"),
        "{}",
        r.all()
    );
    assert!(docker_lines(&[
        "service",
        "ls",
        "-q",
        "--filter",
        "label=benchctl.issue=SWB-3"
    ])
    .is_empty());
}

/// The registry's only user (its password's bcrypt hash is in [`Registry::start`]).
const REGISTRY_USER: &str = "bench";
const REGISTRY_PASSWORD: &str = "s3cret-registry-pass";

#[test]
fn with_a_registry_the_image_is_pushed_and_the_service_runs_it_by_digest() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWR-1", "SWR-2", "SWR-3"]);
    let registry = Registry::start();
    let repo = swarm_app();
    let reg = ["--no-link", "--registry", &registry.host];

    // the registry wants credentials: without them the push fails and says where they go
    let r = deploy(&mut swarm_cmd(), &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("cannot push"), "{}", r.all());
    assert!(r.all().contains("BENCHCTL_REGISTRY_USER"), "{}", r.all());
    assert!(service_of("SWR-1").is_none());

    // from the environment
    let mut cmd = swarm_cmd();
    cmd.env("BENCHCTL_REGISTRY_USER", REGISTRY_USER)
        .env("BENCHCTL_REGISTRY_PASSWORD", REGISTRY_PASSWORD);
    let r = deploy(&mut cmd, &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
    let svc = service_of("SWR-1").unwrap();
    let image = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("{}/benchctl/swr-1:", registry.host);
    assert!(image.starts_with(&prefix), "{image}");
    let (tag, digest) = image[prefix.len()..].split_once('@').unwrap();
    assert!(
        digest.starts_with("sha256:"),
        "referenced by digest: {image}"
    );
    // the registry holds that tag, and its manifest is that digest
    let manifest = registry.get(&format!("/v2/benchctl/swr-1/manifests/{tag}"));
    assert!(
        manifest.contains(&format!("docker-content-digest: {digest}")),
        "{manifest}"
    );

    // from `docker login`'s config.json
    let config = tempfile::tempdir().unwrap();
    let auth = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    let json = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host);
    std::fs::write(config.path().join("config.json"), json).unwrap();
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", config.path());
    let r = deploy(&mut cmd, &repo, "SWR-2", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());

    // from docker's credential helper (`credsStore`), asked as the docker CLI asks it
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-benchtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread reg\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{REGISTRY_USER}\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}' \"$reg\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        store.path().join("config.json"),
        r#"{"credsStore":"benchtest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", store.path()).env("PATH", path);
    let r = deploy(&mut cmd, &repo, "SWR-3", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));

    for issue in ["SWR-1", "SWR-2", "SWR-3"] {
        let r = run(swarm_cmd().args(["--registry", &registry.host, "teardown", issue]));
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(service_of(issue).is_none());
        let filter = format!("label=benchctl.issue={issue}");
        let images = docker_lines(&["images", "-q", "--filter", &filter]);
        assert!(images.is_empty(), "images of {issue} left: {images:?}");
    }
}

fn base64(text: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A real registry (Debian's `docker-registry`) on a loopback port, until dropped; the engine
/// trusts 127.0.0.0/8 registries without TLS.
struct Registry {
    host: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(bin).exists(),
            "this test needs {bin} (apt-get install docker-registry); .ci/run installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        // bcrypt of REGISTRY_PASSWORD
        let htpasswd = format!(
            "{REGISTRY_USER}:$2b$05$uQ4sOJpG7EZcdOV6m8HbCO.0oyOtg47rk.RUcvSL.el7FvPyMBInu\n"
        );
        std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: benchctl-test\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&format!("http://{host}/v2/")).is_none() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start on {host}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Registry {
    /// The response head and body of an authenticated GET (a v2 manifest).
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.host).unwrap();
        let auth = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
             Accept: application/vnd.docker.distribution.manifest.v2+json\r\n\r\n",
            self.host
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf.to_ascii_lowercase()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn traefik_routes_to_a_service_on_an_overlay_network() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let net = format!("benchctl-test-swtrf-{}", std::process::id());
    docker_lines(&["network", "create", "-d", "overlay", "--attachable", &net]);
    let _cleanup = Cleanup::issues(&["SWT-1"]);
    let repo = swarm_app();
    let mut cmd = swarm_cmd();
    cmd.env("BENCHCTL_ROUTER", "traefik")
        .env("BENCHCTL_NETWORK", &net)
        .env("BENCHCTL_URL_TEMPLATE", "https://{issue}.bench.test");
    let r = deploy(&mut cmd, &repo, "SWT-1", 20, &["--no-link"]);
    let svc = service_of("SWT-1");
    // a proxy on the network reaches the bench's task, as Traefik does (its own balancing
    // over the task addresses, which needs no IPVS)
    let reached = svc.as_ref().map(|_| {
        let image = listed_swarm("SWT-1")["image"].as_str().unwrap().to_string();
        Command::new("docker")
            .args(["run", "--rm", "--network", &net, &image])
            .args([
                "/bin/busybox",
                "wget",
                "-q",
                "-O",
                "-",
                "http://tasks.benchctl-swt-1:8080/",
            ])
            .output()
            .unwrap()
    });
    drop(_cleanup);
    let _ = Command::new("docker")
        .args(["network", "rm", &net])
        .output();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["url"], "https://swt-1.bench.test/");
    let svc = svc.unwrap();
    let labels = &svc["Spec"]["Labels"];
    assert_eq!(labels["traefik.enable"], "true");
    assert_eq!(labels["traefik.swarm.network"], net.as_str());
    assert_eq!(
        labels["traefik.http.routers.benchctl-swt-1.rule"],
        "Host(`swt-1.bench.test`)"
    );
    assert_eq!(
        labels["traefik.http.services.benchctl-swt-1.loadbalancer.server.port"],
        "8080"
    );
    assert!(
        svc["Spec"]["EndpointSpec"]["Ports"].is_null(),
        "nothing published: {}",
        svc["Spec"]["EndpointSpec"]
    );
    let out = reached.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "main\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
