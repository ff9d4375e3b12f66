//! Where a swarm bench's traffic comes in: the routing mesh (or why it does not answer), a real
//! Traefik (its swarm provider) routing to a service on an overlay network by its labels, and
//! the same deploy giving the same bench on both backends. In the swarm module's group (one swarm for all).

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::swarm::*;
use crate::support::traefik::TraefikImage;
use crate::support::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_routing_mesh_either_answers_or_is_named_as_the_reason() {
    let _group = crate::support::group("it::swarm");
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
    let _group = crate::support::group("it::swarm");
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

#[test]
fn traefik_routes_to_a_service_on_an_overlay_network() {
    let _group = crate::support::group("it::swarm");
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
    // a real Traefik on the network, with its swarm provider, routes the host to the task by
    // the service's labels (a client container on the network asks it)
    let dir = tempfile::tempdir().unwrap();
    let traefik = TraefikImage::build(dir.path());
    let pid = std::process::id();
    let (proxy, client) = (
        format!("benchctl-test-swtrf-proxy-{pid}"),
        format!("benchctl-test-swtrf-client-{pid}"),
    );
    let reached = svc.as_ref().map(|_| {
        let image = listed_swarm("SWT-1")["image"].as_str().unwrap().to_string();
        docker_lines(&[
            "run",
            "-d",
            "--name",
            &proxy,
            "--network",
            &net,
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock:ro",
            &traefik.0,
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--entryPoints.web.address=:80",
            "--providers.swarm=true",
            "--providers.swarm.exposedByDefault=false",
            &format!("--providers.swarm.network={net}"),
            "--providers.swarm.refreshSeconds=1",
            "--log.level=DEBUG",
            "--providers.swarm.constraints=Label(`benchctl.issue`,`SWT-1`)",
        ]);
        docker_lines(&[
            "run",
            "-d",
            "--name",
            &client,
            "--network",
            &net,
            "--entrypoint",
            "/bin/busybox",
            &image,
            "sleep",
            "300",
        ]);
        let url = format!("http://{proxy}/");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("docker")
                .args(["exec", &client, "/bin/busybox", "wget", "-q", "-O", "-"])
                .args(["--header", "Host: swt-1.bench.test", &url])
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            if got != "main\n" {
                eprintln!("wget: {}", String::from_utf8_lossy(&out.stderr));
            }
            if got == "main\n" || Instant::now() > deadline {
                let log = Command::new("docker")
                    .args(["logs", &proxy])
                    .output()
                    .unwrap();
                let log = [log.stdout, log.stderr].concat();
                break (got, String::from_utf8_lossy(&log).into_owned());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let _ = Command::new("docker")
        .args(["rm", "-f", &proxy, &client])
        .output();
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
    let (got, traefik_log) = reached.unwrap();
    assert_eq!(got, "main\n", "Traefik's log:\n{traefik_log}");
}
