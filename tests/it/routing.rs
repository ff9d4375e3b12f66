//! Addresses from URL templates, and Traefik routing on a real container: router labels on the
//! template's host, the bench on the proxy's network with no published port, readiness probed
//! on the container's own address.

use crate::support::*;
use std::process::Command;

struct Network(String);

impl Network {
    fn create(name: &str) -> Network {
        let _ = Command::new("docker")
            .args(["network", "rm", name])
            .output();
        docker_lines(&["network", "create", name]);
        Network(name.to_string())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

fn inspect(id: &str, format: &str) -> String {
    docker_lines(&["inspect", "-f", format, id]).join("\n")
}

#[test]
fn traefik_routing_labels_a_bench_on_the_proxy_network() {
    let _group = crate::support::group(module_path!());
    require_docker();
    // the network goes after the bench that uses it (locals drop in reverse order)
    let net = Network::create("benchctl-test-trf");
    let _c = Cleanup::issues(&["TRF-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/TRF-1-Shop_Page", "routed\n");
    let deploy = || {
        let mut cmd = benchctl();
        cmd.args([
            "--json",
            "deploy",
            "feature/TRF-1-Shop_Page",
            "--repo",
            &repo.path_str(),
        ])
        .args(["--no-link", "--router", "traefik", "--network", &net.0])
        .args(["--url-template", "https://{issue}-{branch}.bench.test"])
        .args([
            "--traefik-entrypoint",
            "websecure",
            "--traefik-cert-resolver",
            "le",
        ]);
        run(&mut cmd)
    };
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(url, "https://trf-1-feature-trf-1-shop-page.bench.test/");
    let id = issue_containers("TRF-1")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let label = |k: &str| inspect(&id, &format!("{{{{index .Config.Labels \"{k}\"}}}}"));
    assert_eq!(label("traefik.enable"), "true");
    assert_eq!(label("traefik.docker.network"), net.0);
    assert_eq!(
        label("traefik.http.routers.benchctl-trf-1.rule"),
        "Host(`trf-1-feature-trf-1-shop-page.bench.test`)"
    );
    assert_eq!(
        label("traefik.http.routers.benchctl-trf-1.entrypoints"),
        "websecure"
    );
    assert_eq!(label("traefik.http.routers.benchctl-trf-1.tls"), "true");
    assert_eq!(
        label("traefik.http.routers.benchctl-trf-1.tls.certresolver"),
        "le"
    );
    assert_eq!(
        label("traefik.http.services.benchctl-trf-1.loadbalancer.server.port"),
        "8080"
    );
    assert_eq!(inspect(&id, "{{.HostConfig.NetworkMode}}"), net.0);
    // nothing published on the host; the bench answers on its network address
    assert!(!inspect(&id, "{{json .NetworkSettings.Ports}}").contains("HostPort"));
    let ip = inspect(
        &id,
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            net.0
        ),
    );
    assert_eq!(
        http_get(&format!("http://{ip}:8080/")).as_deref(),
        Some("routed\n")
    );
    // list renders the same address
    let row = listed("TRF-1");
    assert_eq!(row["url"], url.as_str());
    // a new commit replaces it on the same route
    repo.branch_with("feature/TRF-1-Shop_Page", "routed again\n");
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["action"], "deployed");
    assert_eq!(issue_containers("TRF-1").len(), 1);

    // --router without --network or --url-template: exit 2, nothing started
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/TRF-1-Shop_Page",
        "--repo",
        &repo.path_str(),
        "--router",
        "traefik",
    ]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--network"), "{}", r.stderr);
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/TRF-1-Shop_Page",
        "--repo",
        &repo.path_str(),
    ])
    .args(["--router", "traefik", "--network", &net.0]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--url-template"), "{}", r.stderr);
}

#[test]
fn a_url_template_without_a_router_names_the_published_port() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["TRF-2"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/TRF-2", "templated\n");
    let mut cmd = benchctl();
    cmd.args([
        "--json",
        "deploy",
        "feature/TRF-2",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ])
    .env("BENCHCTL_URL_TEMPLATE", "http://127.0.0.1:{port}/{issue}/");
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/trf-2/"),
        "{url}"
    );
    let port = url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/")).as_deref(),
        Some("templated\n")
    );
    // a bad template is refused before any work, naming where it came from
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/TRF-2",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ])
    .args(["--url-template", "https://{user}.bench.test"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("{user}") && r.stderr.contains("flag --url-template"),
        "{}",
        r.stderr
    );
}
