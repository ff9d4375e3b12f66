//! serve's idle clock without its proxy: a bench routed by Traefik (no published port, no
//! request through serve) stays awake while its network counters move and sleeps after. A
//! module of its own: serve's idle clock sees every bench on the engine, so no other test's
//! benches may run beside it.

use crate::support::serve::*;
use crate::support::*;
use std::time::Duration;

#[test]
fn a_traefik_routed_bench_stays_awake_while_its_network_moves_and_sleeps_after() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let net = Network::create(&format!("benchctl-test-idle-{}", std::process::id()));
    let _c = Cleanup::issues(&["SLT-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/SLT-1", "slt-1\n");
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/SLT-1",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(["--router", "traefik", "--network", &net.0])
        .args(["--url-template", "http://{issue}.bench.test"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let image = listed("SLT-1")["image"].as_str().unwrap().to_string();
    // what Traefik would send: requests from another container on the proxy's network, once a
    // second for 12 s (no request passes through serve)
    let client = format!("benchctl-test-idle-client-{}", std::process::id());
    docker_lines(&[
        "run",
        "-d",
        "--rm",
        "--name",
        &client,
        "--network",
        &net.0,
        "--entrypoint",
        "/bin/busybox",
        &image,
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do /bin/busybox wget -qO- http://benchctl-slt-1:8080/; \
         /bin/busybox sleep 1; done",
    ]);
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .args(&["--gc-interval", "0"])
        .args(&["--sleep-after", "3s", "--sleep-sample", "1s"])
        .start();
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        bench_state("SLT-1"),
        "running",
        "traffic on its network keeps it awake\n{}",
        s.log()
    );
    s.wait_until(
        "SLT-1 sleeps once the traffic stops",
        Duration::from_secs(30),
        |_| bench_state("SLT-1") == "exited",
    );
    assert!(s.log().contains("[SLT-1] unused for"), "{}", s.log());
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &client])
        .output();
}
