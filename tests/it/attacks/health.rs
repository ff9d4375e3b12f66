//! Issue 29, medium 10 (in part): a branch's health check runs at most once a second. A
//! Dockerfile's `HEALTHCHECK --interval=1ms` and a Compose service's `healthcheck.interval:
//! 1ms` would make the engine exec a process a millisecond, outside the bench's cgroup; the
//! bench's container gets 1 s.

use crate::support::*;

/// The health check interval of a container (nanoseconds, as the engine keeps it).
fn interval(container: &str) -> String {
    docker_lines(&[
        "inspect",
        "-f",
        "{{.Config.Healthcheck.Interval}}",
        container,
    ])
    .join("")
}

#[test]
fn a_health_check_of_a_millisecond_runs_once_a_second() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKP-1", "ATKP-2"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKP-1"]);
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "EXPOSE 8080\n",
            "EXPOSE 8080\nHEALTHCHECK --interval=1ms --timeout=1ms CMD [\"/bin/busybox\", \"true\"]\n",
        ),
    );
    repo.commit("a health check every millisecond");
    let r = run(benchctl().args([
        "deploy",
        "feature/ATKP-1",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(interval("benchctl-atkp-1"), "1s");

    git(
        repo.path(),
        &["checkout", "-q", "-b", "feature/ATKP-2", "main"],
    );
    repo.write(
        "compose.yaml",
        &web_compose(&[
            "healthcheck: {test: [\"CMD\", \"/bin/busybox\", \"true\"], interval: 1ms, timeout: 1ms}",
        ]),
    );
    repo.commit("a Compose health check every millisecond");
    let r = run(benchctl().args([
        "deploy",
        "feature/ATKP-2",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(interval("benchctl-atkp-2"), "1s");
    for issue in ["ATKP-1", "ATKP-2"] {
        let r = run(benchctl().args(["teardown", issue, "--keep-link"]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
}
