//! A multi-service bench without its web service: a failed first deploy removes its services
//! and network and keeps its data; gc removes those of a bench lost another way, and the data
//! once the issue is closed. A hook container a killed deploy left goes with the next deploy.

use super::*;
use crate::support::fake_tracker::{Auth, FakeTracker, Org};

/// The issue whose first deploy fails, and whose parts gc finds without a bench.
const LEFT_ISSUE: &str = "STD-4";

/// The parts of `issue` of `kind` (`network`, `volume`), by name.
fn parts(kind: &str, issue: &str) -> Vec<String> {
    docker_lines(&[
        kind,
        "ls",
        "--filter",
        &format!("label=benchctl.issue={issue}"),
        "--format",
        "{{.Name}}",
    ])
}

/// `benchctl gc --scope <repo> --json` with the fake Tracker: the actions on a multi-service
/// bench's parts as (action, target).
fn gc(repo: &AppRepo, t: &FakeTracker) -> Vec<(String, String)> {
    let r = run(benchctl()
        .args(["gc", "--scope", &repo.path_str(), "--json"])
        .tracker(t, TOKEN, "org-1"));
    assert_eq!(r.code, 0, "{}", r.all());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap().to_string();
            (f("action"), f("target"))
        })
        .filter(|(a, _)| a == "remove-services" || a == "remove-volumes")
        .collect()
}

#[test]
fn a_stack_without_its_bench_keeps_only_its_data_and_that_goes_with_the_issue() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[LEFT_ISSUE]);
    let _db = StandIn::build_as("benchctl-test/stack-db-left:1");
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue(LEFT_ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-4"]);
    repo.write(
        "compose.yaml",
        &COMPOSE.replace(DB_IMAGE, "benchctl-test/stack-db-left:1"),
    );
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", "exit 3\n");
    repo.commit("a web that fails");
    let deploy = || {
        run(benchctl()
            .args([
                "deploy",
                "feature/STD-4",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .args(["--ready-timeout", "20"]))
    };

    // a first deploy that fails: no bench, so its services and network go; its data stays
    let r = deploy();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("has no bench: removed its services"),
        "{}",
        r.all()
    );
    assert!(
        issue_containers(LEFT_ISSUE).is_empty(),
        "{:?}",
        issue_containers(LEFT_ISSUE)
    );
    assert!(parts("network", LEFT_ISSUE).is_empty());
    assert_eq!(parts("volume", LEFT_ISSUE), ["benchctl-std-4-data"]);

    // a one-off hook's container a killed deploy left goes with the next deploy
    docker_lines(&[
        "create",
        "--name",
        "benchctl-std-4-hook-seed-0000ff",
        "--label",
        "benchctl.managed=true",
        "--label",
        "benchctl.issue=STD-4",
        "--label",
        "benchctl.role=hook",
        "benchctl-test/stack-db-left:1",
    ]);
    // a bench lost another way (removed by hand): gc removes its services and network
    repo.write("web.sh", &web_script("v1"));
    repo.commit("web v1");
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all()
            .contains("removed benchctl-std-4-hook-seed-0000ff, a hook container"),
        "{}",
        r.all()
    );
    let web = docker_lines(&["ps", "-q", "--filter", "name=^benchctl-std-4$"]);
    assert_eq!(web.len(), 1);
    docker_lines(&["rm", "-f", &web[0]]);
    assert_eq!(
        gc(&repo, &t),
        [("remove-services".to_string(), LEFT_ISSUE.to_string())]
    );
    let left: Vec<String> = issue_containers(LEFT_ISSUE);
    assert!(left.is_empty(), "{left:?}");
    assert!(parts("network", LEFT_ISSUE).is_empty());
    // the data of an open issue stays; of a closed one, it goes
    assert!(gc(&repo, &t).is_empty());
    assert_eq!(parts("volume", LEFT_ISSUE), ["benchctl-std-4-data"]);
    t.set_status(LEFT_ISSUE, "closed");
    assert_eq!(
        gc(&repo, &t),
        [("remove-volumes".to_string(), LEFT_ISSUE.to_string())]
    );
    assert!(parts("volume", LEFT_ISSUE).is_empty());
    assert!(
        all_issue_containers(LEFT_ISSUE)
            .iter()
            .all(|c| !c.contains("benchctl-seeded-")),
        "{:?}",
        all_issue_containers(LEFT_ISSUE)
    );
}
