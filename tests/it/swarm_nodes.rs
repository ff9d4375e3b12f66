//! The swarm backend across two real nodes: this machine's engine as the manager, and a second
//! engine (its own `dockerd`, data and network namespace, joined over a veth pair) as a worker.
//! Without a registry a deploy is refused, saying why; with one, the image is pushed, the
//! worker pulls it by digest, and the bench's address is the worker's; with the worker made a
//! second manager, deploys through each manager share the issue's lock. Needs root (`ip netns`,
//! a second dockerd) and an engine that is not in a swarm already; fails loudly otherwise.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NETNS: &str = "benchctl-test-worker";
const HOST_IF: &str = "bctw-h";
const NS_IF: &str = "bctw-n";
const HOST_IP: &str = "10.213.7.1";
const WORKER_IP: &str = "10.213.7.2";

fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}

/// A two-node swarm: the manager (this engine) and a worker engine in a network namespace.
/// Dropping it leaves the swarm and removes the worker, its namespace and its files.
struct TwoNodes {
    dir: tempfile::TempDir,
    worker: Option<Child>,
    forwards: Vec<Child>,
    registry: Option<Child>,
    registry_port: u16,
    manager_id: String,
}

impl TwoNodes {
    fn worker_socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    fn worker_docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.worker_socket().display()),
        )
        .args(args);
        cmd
    }

    fn start() -> TwoNodes {
        require_docker();
        let uid = sh("id", &["-u"]);
        assert_eq!(
            uid, "0",
            "this test makes a network namespace and runs a second dockerd: run it as root (CI does)"
        );
        for tool in [
            "ip",
            "nsenter",
            "socat",
            "dockerd",
            "/usr/bin/docker-registry",
        ] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            assert!(
                found.status.success(),
                "this test needs {tool} (.ci/run installs it)"
            );
        }
        let state = docker_lines(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        assert_eq!(
            state.first().map(String::as_str),
            Some("inactive"),
            "the engine is in a swarm already; this test makes its own (leave it: `docker swarm \
             leave --force`)"
        );
        // a namespace left by an earlier run that was killed
        quiet("ip", &["netns", "del", NETNS]);
        quiet("ip", &["link", "del", HOST_IF]);
        sh("ip", &["netns", "add", NETNS]);
        let dir = tempfile::Builder::new()
            .prefix("benchctl-worker-")
            .tempdir()
            .unwrap();
        let mut nodes = TwoNodes {
            dir,
            worker: None,
            forwards: Vec::new(),
            registry: None,
            registry_port: free_port(),
            manager_id: String::new(),
        };
        sh(
            "ip",
            &[
                "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF,
            ],
        );
        sh("ip", &["link", "set", NS_IF, "netns", NETNS]);
        sh(
            "ip",
            &["addr", "add", &format!("{HOST_IP}/24"), "dev", HOST_IF],
        );
        sh("ip", &["link", "set", HOST_IF, "up"]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", NETNS];
            all.extend_from_slice(args);
            sh("ip", &all);
        };
        in_ns(&[
            "ip",
            "addr",
            "add",
            &format!("{WORKER_IP}/24"),
            "dev",
            NS_IF,
        ]);
        in_ns(&["ip", "link", "set", NS_IF, "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);

        // the worker engine: only its network is the namespace's (nsenter --net keeps this
        // machine's /sys and cgroups, which `ip netns exec` would hide)
        let d = nodes.dir.path();
        std::fs::write(d.join("daemon.json"), r#"{"storage-driver": "vfs"}"#).unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let worker = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{NETNS}"))
            .arg("dockerd")
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", nodes.worker_socket().display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        nodes.worker = Some(worker);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !nodes
            .worker_docker(&["info"])
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the worker engine did not start: {}",
                std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }

        sh("docker", &["swarm", "init", "--advertise-addr", HOST_IP]);
        let token = sh("docker", &["swarm", "join-token", "-q", "worker"]);
        let out = nodes
            .worker_docker(&[
                "swarm",
                "join",
                "--token",
                &token,
                &format!("{HOST_IP}:2377"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the worker did not join: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        nodes.manager_id = sh("docker", &["info", "--format", "{{.Swarm.NodeID}}"]);

        // a registry both nodes reach as 127.0.0.1:<port> (engines trust loopback registries
        // without TLS): listening here, forwarded from the worker's loopback by socat
        let port = nodes.registry_port;
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 0.0.0.0:{port}\n",
            d.join("registry").display()
        );
        std::fs::write(d.join("registry.yml"), config).unwrap();
        nodes.registry = Some(
            Command::new("/usr/bin/docker-registry")
                .arg("serve")
                .arg(d.join("registry.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        nodes.forwards.push(
            Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{NETNS}"))
                .arg("socat")
                .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                .arg(format!("TCP:{HOST_IP}:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&format!("http://127.0.0.1:{port}/v2/")).is_none() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        nodes
    }

    fn worker_id(&self) -> String {
        let out = self
            .worker_docker(&["info", "--format", "{{.Swarm.NodeID}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.registry_port)
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        let _ = self.worker_docker(&["swarm", "leave", "--force"]).output();
        quiet("docker", &["swarm", "leave", "--force"]);
        for c in self
            .forwards
            .iter_mut()
            .chain(self.registry.iter_mut())
            .chain(self.worker.iter_mut())
        {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        if let Some(mut w) = self.worker.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && w.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = w.kill();
            let _ = w.wait();
        }
        for c in self.forwards.iter_mut().chain(self.registry.iter_mut()) {
            let _ = c.kill();
            let _ = c.wait();
        }
        // dockerd leaves its data root mounted on itself
        let data: &Path = &self.dir.path().join("data");
        quiet("umount", &["-l", &data.to_string_lossy()]);
        quiet("ip", &["netns", "del", NETNS]);
        quiet("ip", &["link", "del", HOST_IF]);
    }
}

fn deploy(repo: &AppRepo, issue: &str, extra: &[&str]) -> Run {
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host");
    let path = repo.path_str();
    run(cmd
        .args([
            "--json", "deploy", "main", "--repo", &path, "--issue", issue,
        ])
        .args(["--no-link", "--cpus", "0.1", "--memory", "64m"])
        .args(extra))
}

#[test]
fn on_two_nodes_the_image_reaches_the_worker_through_the_registry() {
    let _group = crate::support::group(module_path!());
    let nodes = TwoNodes::start();
    let _cleanup = Cleanup::issues(&["SWN-1", "SWN-2"]);
    let repo = AppRepo::new();

    // without a registry the worker could not start the bench: refused, and why
    let r = deploy(&repo, "SWN-1", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("2 nodes"), "{}", r.all());
    assert!(r.all().contains("--registry"), "{}", r.all());
    let built = docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=SWN-1"]);
    assert!(built.is_empty(), "refused before the build: {built:?}");

    // the manager takes no benches: the bench must run on the worker
    sh(
        "docker",
        &[
            "node",
            "update",
            "--availability",
            "drain",
            &nodes.manager_id,
        ],
    );
    let registry = nodes.registry();
    let r = deploy(&repo, "SWN-1", &["--registry", &registry]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://{WORKER_IP}:")),
        "the worker's address: {url}"
    );
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
    let images = nodes
        .worker_docker(&[
            "images",
            "--digests",
            "--format",
            "{{.Repository}}@{{.Digest}}",
        ])
        .output()
        .unwrap();
    let images = String::from_utf8_lossy(&images.stdout).into_owned();
    assert!(
        images.contains(&format!("{registry}/benchctl/swn-1@sha256:")),
        "the worker pulled the image by digest: {images}"
    );

    // a new commit: pushed again, updated in place on the worker
    repo.write("www/index.html", "v2\n");
    repo.commit("v2");
    let r = deploy(&repo, "SWN-1", &["--registry", &registry]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("http://{WORKER_IP}:")), "{url}");
    assert_eq!(http_get(&url).as_deref(), Some("v2\n"));

    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm");
    let r = run(cmd.args(["--registry", &registry, "teardown", "SWN-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(http_get(&url), None);

    // two managers: deploys of one issue through each take turns (the lock is the swarm's)
    let worker_host = format!("unix://{}", nodes.worker_socket().display());
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm")
        .env("DOCKER_HOST", &worker_host);
    let r = run(cmd.arg("list"));
    assert_eq!(r.code, 2, "a worker cannot run benches: {}", r.all());
    assert!(r.stderr.contains("is a worker"), "{}", r.stderr);
    sh("docker", &["node", "promote", &nodes.worker_id()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = nodes
            .worker_docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "true" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never became a manager"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let children: Vec<_> = [None, Some(worker_host.as_str())]
        .into_iter()
        .map(|host| {
            let mut cmd = benchctl();
            cmd.env("BENCHCTL_BACKEND", "swarm")
                .env("BENCHCTL_PUBLISH_MODE", "host");
            if let Some(h) = host {
                cmd.env("DOCKER_HOST", h);
            }
            let path = repo.path_str();
            cmd.args([
                "--json", "deploy", "main", "--repo", &path, "--issue", "SWN-2",
            ])
            .args(["--no-link", "--cpus", "0.1", "--memory", "64m"])
            .args(["--registry", &registry])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    // the lock one of them holds is seen through the other manager too
    let deadline = Instant::now() + Duration::from_secs(60);
    let lock_seen_by_worker = loop {
        let out = nodes
            .worker_docker(&["config", "ls", "--format", "{{.Name}}"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("benchctl-lock-swn-2") {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut actions: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}\n{err}");
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["action"].as_str().unwrap().to_string()
        })
        .collect();
    actions.sort();
    assert_eq!(actions, ["deployed", "unchanged"]);
    assert!(lock_seen_by_worker, "the issue's lock is a swarm object");
    let configs = docker_lines(&["config", "ls", "--format", "{{.Name}}"]);
    assert!(
        !configs.iter().any(|c| c.contains("benchctl-lock-swn-2")),
        "released: {configs:?}"
    );
    let services = docker_lines(&[
        "service",
        "ls",
        "-q",
        "--filter",
        "label=benchctl.issue=SWN-2",
    ]);
    assert_eq!(services.len(), 1, "{services:?}");
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm");
    let r = run(cmd.args(["--registry", &registry, "teardown", "SWN-2"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
