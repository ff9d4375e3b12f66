//! Readiness: a HEALTHCHECK decides when there is one; otherwise an HTTP answer; a bench that
//! never answers fails after --ready-timeout and is removed.

use crate::support::*;

const SERVE: &str =
    "CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

fn app(key_branch: &str, dockerfile: &str) -> AppRepo {
    let repo = AppRepo::new();
    repo.branch_with(key_branch, "ready\n");
    repo.write("Dockerfile", dockerfile);
    repo.commit("dockerfile");
    repo
}

#[test]
fn healthcheck_gates_readiness() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["RDYA-1", "RDYA-2"]);
    // healthy once httpd answers
    let good = app(
        "feature/RDYA-1",
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
             HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/bin/busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/\"]\n{SERVE}"
        ),
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/RDYA-1",
        "--repo",
        &good.path_str(),
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("ready\n"));
    let health = docker_lines(&[
        "inspect",
        "benchctl-rdya-1",
        "--format",
        "{{.State.Health.Status}}",
    ]);
    assert_eq!(health, vec!["healthy"]);

    // HTTP answers, but the HEALTHCHECK fails: not ready, removed
    let bad = app(
        "feature/RDYA-2",
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
             HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD [\"/bin/busybox\", \"false\"]\n{SERVE}"
        ),
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/RDYA-2",
        "--repo",
        &bad.path_str(),
        "--ready-timeout",
        "30",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("HEALTHCHECK reports unhealthy"),
        "{}",
        r.stderr
    );
    assert!(issue_containers("RDYA-2").is_empty());
}

#[test]
fn bench_that_never_answers_times_out_and_is_removed() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["RDYB-3"]);
    let repo = app(
        "feature/RDYB-3",
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo waiting-forever; exec /bin/busybox sleep 3600\"]\n",
    );
    let r = run(benchctl().args([
        "deploy",
        "feature/RDYB-3",
        "--repo",
        &repo.path_str(),
        "--port",
        "9000",
        "--ready-timeout",
        "3",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("not ready within 3 s"), "{}", r.stderr);
    assert!(
        r.stderr.contains("waiting-forever"),
        "logs missing: {}",
        r.stderr
    );
    assert!(issue_containers("RDYB-3").is_empty());

    // an image without EXPOSE and no --port: a usage error naming the fix
    let r = run(benchctl().args(["deploy", "feature/RDYB-3", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--port"), "{}", r.stderr);
    assert!(issue_containers("RDYB-3").is_empty());
}
