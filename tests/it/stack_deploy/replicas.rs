//! `deploy.replicas` on containers: a service asking for two runs two containers answering to
//! its name; scaling it to one keeps the first container and removes the second; a service
//! that leaves the file is removed at the next deploy; past the operator's `max-replicas` the
//! file is refused with exit 2 before anything is built. The worker has limits of its own, so
//! its part of the bench's limits does not change with the count (a service without them would
//! be given a new part, and a new container, when the count changes).

use super::*;

const ISSUE_RP: &str = "SRP-1";
const BRANCH: &str = "feature/SRP-1-scale";
const WORKER: &str = "benchctl-test/replica-worker:1";

fn file(replicas: u32, with_worker: bool) -> String {
    let mut s = String::from("services:\n  web:\n    build: .\n    ports: [\"8080\"]\n");
    if with_worker {
        s.push_str(&format!(
            "  worker:\n    image: {WORKER}\n    deploy: {{replicas: {replicas}}}\n\
             \x20   mem_limit: 32m\n    cpus: 0.1\n    pids_limit: 32\n"
        ));
    }
    s
}

/// The worker's containers: name, id and the aliases on the bench's network, by name.
fn workers() -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = docker_lines(&[
        "ps",
        "--format",
        "{{.Names}} {{.ID}}",
        "--filter",
        "label=benchctl.issue=SRP-1",
        "--filter",
        "label=benchctl.service=worker",
    ])
    .iter()
    .map(|l| {
        let (name, id) = l.split_once(' ').unwrap();
        let aliases = docker_lines(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.Aliases}}{{end}}",
            name,
        ])
        .join(" ");
        (name.to_string(), id.to_string(), aliases)
    })
    .collect();
    out.sort();
    out
}

fn deploy(repo: &AppRepo, extra: &[&str]) -> Run {
    run(benchctl()
        .args(["deploy", BRANCH, "--repo", &repo.path_str(), "--no-link"])
        .args(extra))
}

#[test]
fn replicas_run_scale_down_and_leave_with_the_file() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[ISSUE_RP]);
    let _worker = StandIn::build_as(WORKER);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", BRANCH]);

    // past the operator's ceiling: refused before any build
    repo.write("compose.yaml", &file(3, true));
    repo.commit("three workers");
    let r = deploy(&repo, &["--max-replicas", "2"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("services.worker") || r.stderr.contains("service `worker`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("max-replicas"), "{}", r.stderr);
    assert!(workers().is_empty());

    repo.write("compose.yaml", &file(2, true));
    repo.commit("two workers");
    let r = deploy(&repo, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let two = workers();
    assert_eq!(
        two.iter().map(|w| w.0.as_str()).collect::<Vec<_>>(),
        ["benchctl-srp-1-svc-worker", "benchctl-srp-1-svc-worker_2"],
        "{two:?}"
    );
    for (name, _, aliases) in &two {
        assert!(aliases.contains("worker"), "{name}: {aliases}");
    }

    // one: the first container is kept as it was, the second goes
    repo.write("compose.yaml", &file(1, true));
    repo.commit("one worker");
    let r = deploy(&repo, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let one = workers();
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(
        one[0].1,
        two[0].1,
        "the first worker was replaced: {}",
        r.all()
    );
    assert!(r.stderr.contains("worker_2"), "{}", r.all());

    // the worker leaves the file: its container goes with the next deploy
    repo.write("compose.yaml", &file(1, false));
    repo.commit("no worker");
    let r = deploy(&repo, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(workers().is_empty(), "{:?}", workers());

    let r = run(benchctl().args(["teardown", ISSUE_RP, "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(all_issue_containers(ISSUE_RP).is_empty());
}
