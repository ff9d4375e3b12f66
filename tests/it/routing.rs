//! Addresses from URL templates, and Traefik routing on a real container: router labels on the
//! template's host, the bench on the proxy's network with no published port, readiness probed
//! on the container's own address, and a real Traefik routing HTTPS to it by those labels.

use crate::support::traefik::{https_get, Traefik};
use crate::support::*;
use std::time::Duration;

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
    // the id of TRF-1's one bench container
    let bench_id = || {
        let found = issue_containers("TRF-1");
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].split(' ').next().unwrap().to_string()
    };
    let id = bench_id();
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
    // a real Traefik routes the address to it by these labels alone: its HTTPS entrypoint
    // `websecure`, the resolver `le` (which cannot reach its CA here: Traefik serves its
    // default certificate meanwhile)
    let dir = tempfile::tempdir().unwrap();
    let websecure = format!("127.0.0.1:{}", free_port());
    let mut args = Traefik::docker_provider(&net.0, "TRF-1");
    args.extend([
        format!("--entryPoints.websecure.address={websecure}"),
        "--certificatesResolvers.le.acme.tlsChallenge=true".into(),
        format!(
            "--certificatesResolvers.le.acme.storage={}",
            dir.path().join("acme.json").display()
        ),
        "--certificatesResolvers.le.acme.caServer=https://127.0.0.1:9/directory".into(),
    ]);
    let traefik = Traefik::start(dir.path(), &args);
    let host = "trf-1-feature-trf-1-shop-page.bench.test";
    let https = || https_get(&websecure, host);
    traefik.wait_for(
        "Traefik routes to TRF-1",
        Duration::from_secs(30),
        https,
        |c, b| c == 200 && b == "routed\n",
    );
    // a new commit replaces it on the same route; the old container keeps serving for
    // --traefik-drain (3 s) after the new one started, so that Traefik routes to the new one
    // before the old one ends
    repo.branch_with("feature/TRF-1-Shop_Page", "routed again\n");
    let since = docker_lines(&["info", "-f", "{{.SystemTime}}"]).join("");
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["action"], "deployed");
    let new_id = bench_id();
    let until = docker_lines(&["info", "-f", "{{.SystemTime}}"]).join("");
    let events = docker_lines(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "label=benchctl.issue=TRF-1",
        "--format",
        "{{.TimeNano}} {{.Action}} {{.Actor.ID}}",
    ]);
    let at = |action: &str, id: &str| -> u128 {
        events
            .iter()
            .find_map(|e| {
                let mut f = e.split(' ');
                let (t, a, who) = (f.next()?, f.next()?, f.next()?);
                (a == action && who.starts_with(id)).then(|| t.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no {action} of {id} in {events:#?}"))
    };
    let (started, died) = (at("start", &new_id), at("die", &id));
    assert!(
        died >= started + 3_000_000_000,
        "the old container ended {} ms after the new one started (--traefik-drain is 3 s)",
        (died as i128 - started as i128) / 1_000_000
    );
    traefik.wait_for(
        "Traefik follows the new container",
        Duration::from_secs(30),
        https,
        |c, b| c == 200 && b == "routed again\n",
    );
    drop(traefik);

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
    // a drain that is not a duration: exit 2 naming the flag
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/TRF-1-Shop_Page",
            "--repo",
            &repo.path_str(),
        ])
        .args(["--traefik-drain", "soon"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--traefik-drain `soon`"), "{}", r.stderr);
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

/// A multi-service bench's web service: serves what its `helper` service says over the
/// bench's network.
const STACK_WEB: &str = "mkdir -p /tmp/www\n\
while true; do\n\
h=$(/bin/busybox wget -q -O- http://helper:9090/)\n\
echo \"routed $h\" > /tmp/www/next && mv /tmp/www/next /tmp/www/index.html\n\
sleep 0.2\n\
done &\n\
exec /bin/busybox httpd -f -p 8080 -h /tmp/www\n";

const STACK_COMPOSE: &str = r#"
services:
  web:
    build: .
    ports: ["8080"]
    depends_on: [helper]
  helper:
    build: .
    command: ["/bin/busybox", "sh", "-c", "mkdir -p /h && echo from-helper > /h/index.html && exec /bin/busybox httpd -f -p 9090 -h /h"]
"#;

#[test]
fn a_multi_service_bench_is_routed_through_its_web_service() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let net = Network::create("benchctl-test-trf-stack");
    let _c = Cleanup::issues(&["TRF-3"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/TRF-3"]);
    std::fs::copy(BUSYBOX, repo.path().join("busybox")).unwrap();
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.sh /web.sh\n\
         CMD [\"/bin/busybox\", \"sh\", \"/web.sh\"]\n",
    );
    repo.write("web.sh", STACK_WEB);
    repo.write("compose.yaml", STACK_COMPOSE);
    repo.commit("routed stack");
    let r = run(benchctl()
        .args([
            "--json",
            "deploy",
            "feature/TRF-3",
            "--repo",
            &repo.path_str(),
        ])
        .args(["--no-link", "--router", "traefik", "--network", &net.0])
        .args(["--url-template", "http://{issue}.bench.test"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["url"], "http://trf-3.bench.test/");
    let id = docker_lines(&["ps", "-q", "--filter", "name=^benchctl-trf-3$"]).join("");
    assert!(!id.is_empty());
    let label = |k: &str| inspect(&id, &format!("{{{{index .Config.Labels \"{k}\"}}}}"));
    assert_eq!(label("traefik.docker.network"), net.0);
    assert_eq!(
        label("traefik.http.routers.benchctl-trf-3.rule"),
        "Host(`trf-3.bench.test`)"
    );
    // on the proxy's network and the bench's, publishing nothing
    assert!(!inspect(&id, "{{json .NetworkSettings.Ports}}").contains("HostPort"));
    let nets = inspect(
        &id,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    let mut nets: Vec<&str> = nets.split_whitespace().collect();
    nets.sort();
    assert_eq!(nets, ["benchctl-test-trf-stack", "benchctl-trf-3"]);
    // what the proxy reaches: the web service, answering with its helper's data
    let ip = inspect(
        &id,
        &format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            net.0
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = http_get(&format!("http://{ip}:8080/")).unwrap_or_default();
        if got.trim() == "routed from-helper" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "answers {got:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // teardown leaves the proxy's network, which is not the bench's
    let r = run(benchctl().args(["teardown", "TRF-3", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(all_issue_containers("TRF-3").is_empty());
    assert_eq!(
        docker_lines(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{}$", net.0)
        ])
        .len(),
        1
    );
}

/// The Traefik example (examples/traefik/docker-compose.yml) as docker-compose reads it: a
/// Traefik new enough for asleep.yml's `statusRewrites` (3.4), whose file provider reads the
/// asleep.yml the example mounts.
#[test]
fn the_traefik_compose_example_mounts_the_asleep_page_it_configures() {
    let _group = crate::support::group(module_path!());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/traefik");
    let out = std::process::Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config"])
        .current_dir(&dir)
        .env("ACME_EMAIL", "ops@example.com")
        .output()
        .expect("this test needs docker-compose (apt-get install docker-compose)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let traefik = &config["services"]["traefik"];
    let image = traefik["image"].as_str().unwrap();
    let version: Vec<u32> = image
        .trim_start_matches("traefik:v")
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(version >= vec![3, 4], "{image}: asleep.yml needs 3.4");
    let file = traefik["command"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a.as_str()?.strip_prefix("--providers.file.filename="))
        .expect("the file provider");
    let mount = format!("{}:{file}:ro", dir.join("asleep.yml").display());
    assert!(
        traefik["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_str() == Some(&mount)),
        "{mount} in {text}"
    );
}
