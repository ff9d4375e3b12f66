//! A branch's Compose file reaching past its own bench: an `image:` service whose image carries
//! routing or benchctl labels, a build context that is a link to a host directory, a volume of
//! the bench's name that someone else made, and more services than a bench may have. Each is
//! refused and nothing of the bench runs.

use crate::support::*;
use std::process::Command;

struct Image(&'static str);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", self.0]).output();
    }
}

fn deploy(repo: &AppRepo, branch: &str) -> Run {
    run(benchctl().args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"]))
}

#[test]
fn a_compose_file_cannot_reach_past_its_bench() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKC-1", "ATKC-2", "ATKC-3", "ATKC-4"]);
    let repo = AppRepo::new();

    // an image that would route another host through the shared proxy
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nLABEL traefik.http.routers.x.rule=Host(`atkc-9.x`)\n",
    )
    .unwrap();
    let _img = Image("benchctl-test/atkc-routed:1");
    docker_build(dir.path(), "benchctl-test/atkc-routed:1", &[]);
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKC-1"]);
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n  side:\n    image: benchctl-test/atkc-routed:1\n",
    );
    repo.commit("a routed side service");
    let r = deploy(&repo, "feature/ATKC-1");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("traefik.http.routers.x.rule"),
        "{}",
        r.stderr
    );
    assert!(issue_containers("ATKC-1").is_empty());

    // a build context that is a link to a host directory
    let host = tempfile::tempdir().unwrap();
    std::fs::write(
        host.path().join("Dockerfile"),
        "FROM scratch\nCOPY secret /secret\n",
    )
    .unwrap();
    std::fs::write(host.path().join("secret"), "host-canary-4c4c\n").unwrap();
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKC-2"]);
    std::os::unix::fs::symlink(host.path(), repo.path().join("ctx")).unwrap();
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    build: ./ctx\n    ports: [\"8080\"]\n",
    );
    repo.commit("a context out of the branch");
    let r = deploy(&repo, "feature/ATKC-2");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("`ctx` is a symlink leading out of the branch"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("host-canary-4c4c"));
    assert!(docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=ATKC-2"]).is_empty());
    std::fs::remove_file(repo.path().join("ctx")).unwrap();

    // a volume of the bench's name that is not the bench's
    let foreign = "benchctl-atkc-3-data";
    let _ = Command::new("docker")
        .args(["volume", "rm", foreign])
        .output();
    docker_lines(&["volume", "create", foreign]);
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKC-3"]);
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data:\n",
    );
    repo.commit("a volume");
    let r = deploy(&repo, "feature/ATKC-3");
    let _ = Command::new("docker")
        .args(["volume", "rm", foreign])
        .output();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("is not this bench's"), "{}", r.stderr);
    assert!(issue_containers("ATKC-3").is_empty());

    // more services than a bench may have
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKC-4"]);
    let mut many = String::from("services:\n  web:\n    build: .\n    ports: [\"8080\"]\n");
    for i in 0..12 {
        many.push_str(&format!("  s{i}:\n    image: busybox\n"));
    }
    repo.write("compose.yaml", &many);
    repo.commit("many services");
    let r = deploy(&repo, "feature/ATKC-4");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("13 services"), "{}", r.stderr);
}
