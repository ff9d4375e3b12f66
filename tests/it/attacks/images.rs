//! Issue 29, medium 9: a branch reads only the images the operator allows. A canary image on
//! the engine (an operator's private image: a secret in a file) is what the branch tries to
//! read: `COPY --from`, `RUN --mount=...,from=`, `FROM` through a build argument, a Compose
//! `image:`, and another bench's image. Each deploy is refused with exit 2 naming the file,
//! line and image, before anything is built. The positive control: once the operator allows
//! the canary's name, the same branch serves the secret, so the refusals are what stops it.

use crate::support::*;
use std::process::Command;

const CANARY: &str = "benchctl-canary/secret:1";
const SECRET: &str = "canary-secret-5f1e";

struct Image(&'static str);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", self.0]).output();
    }
}

fn deploy(repo: &AppRepo, extra: &[&str]) -> Run {
    run(benchctl()
        .args([
            "deploy",
            "feature/ATKI-1",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(extra))
}

#[test]
fn a_branch_reads_no_image_the_operator_does_not_allow() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKI-1"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), SECRET).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY secret /secret\n",
    )
    .unwrap();
    let _canary = Image(CANARY);
    docker_build(dir.path(), CANARY, &[]);

    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKI-1"]);
    let reads = APP_DOCKERFILE.replace(
        "COPY www /www\n",
        &format!("COPY www /www\nCOPY --from={CANARY} /secret /www/secret.txt\n"),
    );
    for (dockerfile, line, shown) in [
        (reads.clone(), 4, "docker.io/benchctl-canary/secret"),
        (
            format!("FROM scratch\nRUN --mount=type=bind,from={CANARY},target=/c true\n"),
            2,
            "docker.io/benchctl-canary/secret",
        ),
        (
            "ARG BASE=busybox\nFROM $BASE\n".into(),
            2,
            "docker.io/benchctl-canary/secret",
        ),
        ("FROM benchctl/atki-2:abc\n".into(), 1, "benchctl/atki-2"),
        (
            "ARG B\nFROM ${B}\n".into(),
            2,
            "cannot be known before the build",
        ),
    ] {
        repo.write("Dockerfile", &dockerfile);
        repo.write(
            "benchctl.toml",
            "[build-args]\nBASE = \"benchctl-canary/secret:1\"\n",
        );
        repo.commit(&format!("reads {shown}"));
        let r = deploy(&repo, &[]);
        assert_eq!(r.code, 2, "{dockerfile}: {}", r.all());
        assert!(r.stderr.contains(&format!("line {line}")), "{}", r.stderr);
        assert!(r.stderr.contains(shown), "{}", r.stderr);
        assert!(r.stderr.contains("Nothing was built"), "{}", r.stderr);
        assert!(issue_containers("ATKI-1").is_empty());
    }
    // another bench's image, even where the operator allows every image
    repo.write("Dockerfile", "FROM benchctl/atki-2:abc\n");
    repo.commit("another bench");
    let r = deploy(&repo, &["--allow-images", "*"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("built for a bench"), "{}", r.stderr);

    // a Compose service's image
    repo.write("Dockerfile", APP_DOCKERFILE);
    repo.write(
        "compose.yaml",
        &format!(
            "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n  side:\n    image: {CANARY}\n"
        ),
    );
    repo.commit("a compose image");
    let r = deploy(&repo, &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("service `side`") && r.stderr.contains("benchctl-canary/secret"),
        "{}",
        r.stderr
    );
    assert!(issue_containers("ATKI-1").is_empty());
    std::fs::remove_file(repo.path().join("compose.yaml")).unwrap();

    // the positive control: allowed, the same Dockerfile reads the canary's secret
    repo.write("Dockerfile", &reads);
    repo.commit("reads the canary, allowed");
    let allowed = format!("{TEST_IMAGES},docker.io/benchctl-canary/*");
    let r = deploy(&repo, &["--allow-images", &allowed]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = listed("ATKI-1")["url"].as_str().unwrap().to_string();
    let body = http_get(&format!("{url}/secret.txt")).unwrap_or_default();
    assert_eq!(body, SECRET, "the control should read the canary");
    let r = run(benchctl().args(["teardown", "ATKI-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
