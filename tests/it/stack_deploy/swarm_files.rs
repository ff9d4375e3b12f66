//! The real-files bench on a single-node swarm: the file's networks are overlay networks of the
//! bench (one internal), services reach each other by alias, `container_name` and `hostname`;
//! a secret and a file of the branch reach the web service as swarm configs named by the bench,
//! which teardown removes with it; `deploy.replicas: 2` runs two services behind one alias. A directory of the branch cannot be a swarm config: it is
//! refused naming the swarm.

use super::real_files::real_files_repo;
use super::*;
use crate::support::swarm::SwarmGuard;

const ISSUE_SF: &str = "STR-3";
const BRANCH_SF: &str = "feature/STR-3-swarm";
const DB_SF: &str = "benchctl-test/real-db-swarm:1";
const SECRET_SF: &str = "swarm-secret-canary-77d0";

const FILE_SF: &str = r#"
services:
  proxy:
    build: proxy
    container_name: front
    ports: ["8080:8080"]
    volumes: ["./site/index.html:/www/index.html:ro"]
    secrets: [token]
    networks: [frontnet]
    depends_on: [api]
    stop_signal: SIGINT
  api:
    build: api
    hostname: api-host
    networks:
      frontnet: {aliases: [backend]}
      backnet:
    depends_on: [db]
    deploy: {replicas: 2}
  db:
    image: benchctl-test/real-db-swarm:1
    volumes: ["data:/data"]
    networks: [backnet]
networks:
  frontnet:
  backnet: {internal: true}
volumes:
  data:
secrets:
  token: {file: secret.txt}
"#;

/// `benchctl ARGS` on the swarm (host publish mode), with `--repo` when `repo` is given.
fn swarm(repo: Option<&AppRepo>, args: &[&str]) -> Run {
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host")
        .args(args);
    if let Some(r) = repo {
        cmd.args(["--repo", &r.path_str()]);
    }
    run(&mut cmd)
}

fn configs() -> Vec<String> {
    docker_lines(&[
        "config",
        "ls",
        "--filter",
        &format!("label=benchctl.issue={ISSUE_SF}"),
        "--filter",
        "label=benchctl.role=file",
        "--format",
        "{{.Name}}",
    ])
}

#[test]
fn a_real_compose_file_runs_on_a_swarm_with_its_networks_and_files() {
    let _group = crate::support::group(GROUP);
    let _swarm = SwarmGuard::acquire();
    let _c = Cleanup::issues(&[ISSUE_SF]);
    let _db = StandIn::build_as(DB_SF);
    let repo = real_files_repo(BRANCH_SF, FILE_SF, SECRET_SF);

    let r = swarm(
        Some(&repo),
        &[
            "--json",
            "deploy",
            BRANCH_SF,
            "--no-link",
            "--ready-timeout",
            "90",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    wait_for(&format!("{url}/index.html"), "site v1");
    wait_for(&format!("{url}/secret.html"), SECRET_SF);
    wait_for(&format!("{url}/api.html"), "v1 api-host db=1 front=site v1");
    // the proxy is on the front network only
    wait_for(&format!("{url}/db.txt"), "none");
    let driver = docker_lines(&[
        "network",
        "inspect",
        "benchctl-str-3-net-backnet",
        "--format",
        "{{.Driver}} {{.Internal}}",
    ]);
    assert_eq!(driver, ["overlay true"]);
    assert_eq!(configs().len(), 2, "{:?}", configs());
    // two replicas of api: two services of the swarm, both behind its alias
    let api = docker_lines(&[
        "service",
        "ls",
        "--filter",
        &format!("label=benchctl.issue={ISSUE_SF}"),
        "--filter",
        "label=benchctl.service=api",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(api.len(), 2, "{api:?}");

    // teardown takes the configs with the bench
    let r = swarm(None, &["teardown", ISSUE_SF]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(configs().is_empty(), "{:?}", configs());

    // a directory of the branch is no swarm config
    repo.write(
        "compose.yaml",
        &FILE_SF.replace("./site/index.html:/www/index.html:ro", "./site:/www:ro"),
    );
    repo.commit("a directory");
    let r = swarm(Some(&repo), &["deploy", BRANCH_SF, "--no-link"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("a swarm hands a service files"),
        "{}",
        r.stderr
    );
}
