//! The three-service bench on a single-node swarm: services on an overlay network, db pinned
//! where its volume is, the web service updated in place and rolled back, hooks (one-off and
//! exec), teardown.

use super::*;
use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::swarm::SwarmGuard;

/// The swarm variant's issue and its db stand-in (a tag of its own: the docker variant runs
/// beside it and removes its own).
const SWARM_ISSUE: &str = "STD-3";
const SWARM_DB_IMAGE: &str = "benchctl-test/stack-db-swarm:1";

/// `deploy` of the swarm variant's branch on the swarm (host publish mode).
fn swarm_deploy(repo: &AppRepo, t: &FakeTracker) -> Run {
    run(benchctl()
        .env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host")
        .args(["--json", "deploy", "feature/STD-3-shop", "--repo"])
        .arg(repo.path_str())
        .tracker(t, TOKEN, "org-1")
        .env("GREETING", "hi")
        .args(["--env", "GREETING", "--ready-timeout", "60"]))
}

/// The swarm variant's services as `docker service ls` names them, sorted.
fn swarm_services() -> Vec<String> {
    let mut names = docker_lines(&[
        "service",
        "ls",
        "--filter",
        "label=benchctl.issue=STD-3",
        "--format",
        "{{.Name}}",
    ]);
    names.sort();
    names
}

/// The running container of the swarm variant's db service.
fn swarm_db() -> String {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=benchctl-std-3-svc-db",
    ])
    .join(" ")
}

#[test]
fn on_a_swarm_the_services_are_swarm_services_and_the_web_one_updates_in_place() {
    let _group = crate::support::group(GROUP);
    let _swarm = SwarmGuard::acquire();
    let _c = Cleanup::issues(&[SWARM_ISSUE]);
    let _db = StandIn::build_as(SWARM_DB_IMAGE);
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue(SWARM_ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-3-shop"]);
    repo.write("compose.yaml", &COMPOSE.replace(DB_IMAGE, SWARM_DB_IMAGE));
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", &web_script("v1"));
    // the seed in a one-off container of db's image on the overlay network, with its volume
    let one_off = hooks(RELEASE).replace("[hooks.seed]\n", "[hooks.seed]\nrun = \"one-off\"\n");
    assert!(one_off.contains("one-off"));
    repo.write("benchctl.toml", &one_off);
    repo.commit("three services");

    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        t.field(SWARM_ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );
    // the web service reads db's data over the bench's overlay network
    wait_for(&url, "v1 hi count=1 migrated=yes");
    assert_eq!(
        swarm_services(),
        [
            "benchctl-std-3",
            "benchctl-std-3-svc-db",
            "benchctl-std-3-svc-migrate"
        ]
    );
    let driver = docker_lines(&[
        "network",
        "inspect",
        "benchctl-std-3",
        "--format",
        "{{.Driver}}",
    ]);
    assert_eq!(driver, ["overlay"]);
    // the db keeps its data in a volume of this node: it is pinned here
    let node = docker_lines(&["info", "--format", "{{.Swarm.NodeID}}"]).join("");
    let constraints = docker_lines(&[
        "service",
        "inspect",
        "benchctl-std-3-svc-db",
        "--format",
        "{{json .Spec.TaskTemplate.Placement.Constraints}}",
    ]);
    assert_eq!(constraints, [format!("[\"node.id=={node}\"]")]);
    let db = swarm_db();
    assert!(!db.is_empty());
    assert_eq!(lines_in(&db, "/data/seeds"), "1");
    assert_eq!(lines_in(&db, "/data/releases"), "1");
    let row = listed_by(
        {
            let mut c = benchctl();
            c.env("BENCHCTL_BACKEND", "swarm");
            c
        },
        SWARM_ISSUE,
    );
    let states: Vec<(&str, &str)> = row["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("web", "running"), ("db", "running"), ("migrate", "exited")],
        "{row}"
    );
    let web_id = docker_lines(&[
        "service",
        "inspect",
        "benchctl-std-3",
        "--format",
        "{{.ID}}",
    ]);

    // a web-only commit: the web service is updated in place; db keeps running with its data
    repo.write("web.sh", &web_script("v2"));
    repo.commit("web v2");
    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    // a host-mode port is the new task's own
    let url = r.json()["url"].as_str().unwrap().to_string();
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(swarm_db(), db, "the db task was replaced");
    assert_eq!(
        docker_lines(&[
            "service",
            "inspect",
            "benchctl-std-3",
            "--format",
            "{{.ID}}"
        ]),
        web_id
    );
    assert_eq!(lines_in(&db, "/data/seeds"), "1");
    assert_eq!(lines_in(&db, "/data/releases"), "2");

    // a web that fails: the swarm rolls back, the old version keeps serving, the link stays
    repo.write("web.sh", "exit 3\n");
    repo.commit("broken web");
    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 1, "{}", r.all());
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(
        t.field(SWARM_ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );

    // teardown: the teardown hook, every service, the network and the volume
    let r = run(benchctl()
        .env("BENCHCTL_BACKEND", "swarm")
        .args(["teardown", SWARM_ISSUE])
        .tracker(&t, TOKEN, "org-1"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("teardown hook done"), "{}", r.all());
    assert!(swarm_services().is_empty(), "{:?}", swarm_services());
    for kind in ["network", "volume"] {
        assert!(
            docker_lines(&[kind, "ls", "-q", "--filter", "label=benchctl.issue=STD-3"]).is_empty(),
            "a {kind} is left"
        );
    }
    assert_eq!(t.field(SWARM_ISSUE, "benchLink"), None);
}
