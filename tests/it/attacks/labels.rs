//! A branch claiming another bench's route or hiding its bench from benchctl with labels: its
//! image may carry no `traefik.*`, `benchctl.*` or `com.docker.*` label benchctl did not write,
//! whether from a `LABEL` line, one spelled through an `ARG`, or its base image. Such an image
//! is refused (exit 2 naming the label), nothing runs and the image goes; the branch's next
//! clean deploy works.

use crate::support::*;
use std::process::Command;

struct Network(String);

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

struct Image(&'static str);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", self.0]).output();
    }
}

#[test]
fn labels_that_route_or_hide_a_bench_are_refused_from_every_source() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let net = "benchctl-test-atkl";
    let _ = Command::new("docker").args(["network", "rm", net]).output();
    docker_lines(&["network", "create", net]);
    let _net = Network(net.to_string());
    let _c = Cleanup::issues(&["ATKL-1", "ATKL-2"]);
    // a base image that brings a swarm task's label
    let base_dir = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, base_dir.path().join("busybox")).unwrap();
    std::fs::write(
        base_dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nLABEL com.docker.swarm.task.id=x\n",
    )
    .unwrap();
    let _base = Image("benchctl-test/atkl-base:1");
    docker_build(base_dir.path(), "benchctl-test/atkl-base:1", &[]);

    let repo = AppRepo::new();
    let branch = "feature/ATKL-1";
    git(repo.path(), &["checkout", "-q", "-b", branch]);
    let routed = |cmd: &mut Command| {
        cmd.args(["--router", "traefik", "--network", net])
            .args(["--url-template", "http://{issue}.bench.example.com"]);
    };
    for (extra, label) in [
        // PROJ-1's code serving PROJ-2's host name behind the shared Traefik
        (
            "LABEL traefik.http.routers.x.rule=\"Host(`atkl-2.bench.example.com`)\" \
             traefik.http.routers.x.service=x\n",
            "traefik.http.routers.x.rule",
        ),
        // hiding from list/teardown/gc, the key spelled through an ARG
        ("ARG HIDE=benchctl.role\nLABEL ${HIDE}=x\n", "benchctl.role"),
        // an empty value counts too
        ("LABEL traefik.enable=\"\"\n", "traefik.enable"),
        (
            "LABEL benchctl.issue=ATKL-2\nLABEL benchctl.repo=elsewhere\n",
            "benchctl.repo",
        ),
    ] {
        repo.write(
            "Dockerfile",
            &APP_DOCKERFILE.replace("EXPOSE", &format!("{extra}EXPOSE")),
        );
        repo.commit(label);
        let mut cmd = benchctl();
        cmd.args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"]);
        routed(&mut cmd);
        let r = run(&mut cmd);
        assert_eq!(r.code, 2, "{label}: {}", r.all());
        assert!(
            r.stderr.contains(&format!("`{label}`")),
            "{label}: {}",
            r.stderr
        );
        assert!(issue_containers("ATKL-1").is_empty(), "{label}");
        assert!(issue_containers("ATKL-2").is_empty(), "{label}");
        assert!(
            docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=ATKL-1"]).is_empty(),
            "{label}: the refused image is left"
        );
    }
    // the base image's label, without routing
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "FROM scratch\nCOPY busybox /bin/busybox\n",
            "FROM benchctl-test/atkl-base:1\n",
        ),
    );
    repo.commit("a labelled base");
    let r = run(benchctl().args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("`com.docker.swarm.task.id`"),
        "{}",
        r.stderr
    );
    assert!(issue_containers("ATKL-1").is_empty());

    // a clean Dockerfile deploys, routed, with only benchctl's router labels
    repo.write("Dockerfile", APP_DOCKERFILE);
    repo.commit("clean");
    let mut cmd = benchctl();
    cmd.args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"]);
    routed(&mut cmd);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    let id = issue_containers("ATKL-1")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let labels: std::collections::HashMap<String, String> = serde_json::from_str(
        &docker_lines(&["inspect", "-f", "{{json .Config.Labels}}", &id]).join(""),
    )
    .unwrap();
    let rules: Vec<_> = labels
        .iter()
        .filter(|(k, _)| k.starts_with("traefik.http.routers.") && k.ends_with(".rule"))
        .collect();
    assert_eq!(rules.len(), 1, "{labels:?}");
    assert_eq!(rules[0].1, "Host(`atkl-1.bench.example.com`)");
    assert_eq!(labels["benchctl.role"], "");
    assert_eq!(listed("ATKL-1")["issue"], "ATKL-1");
    let r = run(benchctl().args(["teardown", "ATKL-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(issue_containers("ATKL-1").is_empty());
}
