//! The engine's role for multi-service benches on Docker: the bench's network (services reach
//! each other by name), its named volumes (data outlives a container), its services'
//! containers (labelled, health-checked, restricted like a bench), and their removal by label.

use crate::support::*;
use benchctl::engine::{HealthSpec, Limits, ServiceMount, ServiceSpec};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const ISSUE: &str = "STK-1";

fn sh(script: &str) -> Option<Vec<String>> {
    Some(vec![
        "/bin/busybox".into(),
        "sh".into(),
        "-c".into(),
        script.into(),
    ])
}

fn state(id: &str) -> String {
    docker_lines(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}",
        id,
    ])
    .join("")
}

#[test]
fn services_share_a_network_and_volumes_and_go_by_label() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&[ISSUE]);
    let repo = AppRepo::new();
    let image = "benchctl-test/stk-1:1";
    docker_build(repo.path(), image, &["--label", "benchctl.issue=STK-1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = benchctl::engine::docker::DockerEngine::connect()
            .await
            .unwrap()
            .engine();
        let labels: HashMap<String, String> = HashMap::from([
            ("benchctl.managed".into(), "true".into()),
            ("benchctl.issue".into(), ISSUE.into()),
        ]);
        let net = "benchctl-stk-1";
        engine.stacks.ensure_network(net, &labels).await.unwrap();
        // again: a redeploy finds it there
        engine.stacks.ensure_network(net, &labels).await.unwrap();
        engine
            .stacks
            .ensure_volume("benchctl-stk-1-data", &labels)
            .await
            .unwrap();
        let limits = Limits {
            memory_bytes: 64 << 20,
            nano_cpus: 500_000_000,
            pids: 64,
        };
        let db = |name: &str| ServiceSpec {
            name: name.into(),
            image: image.into(),
            labels: labels.clone(),
            cmd: sh(
                "c=$(cat /data/count 2>/dev/null || echo 0); echo $((c+1)) > /data/count; \
                     exec /bin/busybox httpd -f -p 5432 -h /data",
            ),
            network: net.into(),
            aliases: vec!["db".into()],
            mounts: vec![ServiceMount {
                volume: Some("benchctl-stk-1-data".into()),
                target: "/data".into(),
                read_only: false,
            }],
            limits: limits.clone(),
            health: Some(HealthSpec {
                test: vec![
                    "CMD".into(),
                    "/bin/busybox".into(),
                    "test".into(),
                    "-f".into(),
                    "/data/count".into(),
                ],
                interval: Some(Duration::from_millis(300)),
                timeout: Some(Duration::from_secs(2)),
                retries: Some(3),
                start_period: None,
            }),
            restart: Some("unless-stopped".into()),
            ..Default::default()
        };
        let first = engine
            .stacks
            .run_service(&db("benchctl-stk-1-db"))
            .await
            .unwrap();
        let web = ServiceSpec {
            name: "benchctl-stk-1-web".into(),
            image: image.into(),
            labels: labels.clone(),
            cmd: sh("mkdir -p /tmp/www; while true; do \
                     /bin/busybox wget -q -O /tmp/www/index.html http://db:5432/count; sleep 0.2; \
                     done & exec /bin/busybox httpd -f -p 8080 -h /tmp/www"),
            network: net.into(),
            aliases: vec!["web".into()],
            tmpfs: vec!["/tmp".into()],
            publish: Some((8080, "127.0.0.1".into())),
            limits: limits.clone(),
            ..Default::default()
        };
        let web_id = engine.stacks.run_service(&web).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !state(&first).ends_with("healthy") {
            assert!(
                Instant::now() < deadline,
                "db never healthy: {}",
                state(&first)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let port = docker_lines(&["port", &web_id, "8080/tcp"])[0]
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&url).as_deref() != Some("1\n") {
            assert!(
                Instant::now() < deadline,
                "web never read db: {:?}",
                http_get(&url)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // the data outlives the container: a new db counts on
        docker_lines(&["rm", "-f", &first]);
        engine
            .stacks
            .run_service(&db("benchctl-stk-1-db"))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&url).as_deref() != Some("2\n") {
            assert!(
                Instant::now() < deadline,
                "the count did not survive: {:?}",
                http_get(&url)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // restricted like a bench
        assert!(!can_make_device_node(&web_id));
        // removal by label: containers first, then the network and the volume
        for id in docker_lines(&["ps", "-aq", "--filter", "label=benchctl.issue=STK-1"]) {
            engine.benches.remove(&id).await.unwrap();
        }
        let filter = vec!["benchctl.issue=STK-1".to_string()];
        assert_eq!(
            engine.stacks.remove_networks(&filter).await.unwrap(),
            vec![net.to_string()]
        );
        assert_eq!(
            engine.stacks.remove_volumes(&filter).await.unwrap(),
            vec!["benchctl-stk-1-data".to_string()]
        );
        assert!(docker_lines(&[
            "network",
            "ls",
            "-q",
            "--filter",
            "label=benchctl.issue=STK-1"
        ])
        .is_empty());
        assert!(docker_lines(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=benchctl.issue=STK-1"
        ])
        .is_empty());
    });
}
