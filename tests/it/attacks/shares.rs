//! Issue 29, medium 10: a Compose bench's limits bound the whole bench. Five containers (the
//! web service, three replicas of a worker, and a side service that asks for 64 MiB) under a
//! bench of 300 MiB, 1 CPU and 256 processes: their memory, CPUs and processes add up to no
//! more than the bench's. Before, each container got the bench's limits, so a bench of twelve
//! took twelve benches' share of the host.

use crate::support::*;

#[test]
fn a_compose_benchs_containers_share_its_limits() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKM-1"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKM-1"]);
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n\
         \x20 worker:\n    build: .\n    deploy: {replicas: 3}\n\
         \x20 side:\n    build: .\n    mem_limit: 64m\n",
    );
    repo.commit("five containers");
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/ATKM-1",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(["--memory", "300m"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let ids: Vec<String> = docker_lines(&["ps", "-q", "--filter", "label=benchctl.issue=ATKM-1"]);
    assert_eq!(ids.len(), 5, "{ids:?}");
    let mut sums = [0i64; 3];
    for id in &ids {
        let l = docker_lines(&[
            "inspect",
            "-f",
            "{{.Name}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
            id,
        ]);
        let w: Vec<&str> = l[0].split_whitespace().collect();
        for (i, v) in w[1..].iter().enumerate() {
            let v: i64 = v.parse().unwrap();
            assert!(v > 0, "{} is unlimited: {l:?}", w[0]);
            sums[i] += v;
        }
        if w[0].ends_with("-side") {
            assert_eq!(
                w[1],
                (64i64 << 20).to_string(),
                "the side service keeps its own limit"
            );
        }
    }
    assert!(
        sums[0] <= 300 << 20,
        "memory of the bench: {} MiB",
        sums[0] >> 20
    );
    assert!(
        sums[1] <= 1_000_000_000,
        "CPUs of the bench: {} nano",
        sums[1]
    );
    assert!(sums[2] <= 256, "processes of the bench: {}", sums[2]);
    let r = run(benchctl().args(["teardown", "ATKM-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
