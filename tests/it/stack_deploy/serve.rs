//! The three-service bench through `benchctl serve`: a push deploys it with its seed and
//! release hooks, as `benchctl deploy` does; the Tracker's close removes all of it (its
//! teardown hook first, then the services, the network and the volumes) and clears the link.

use super::*;
use crate::support::serve::*;

const SERVE_ISSUE: &str = "STD-5";
const SERVE_DB_IMAGE: &str = "benchctl-test/stack-db-serve:1";

/// The parts of the issue the engine holds: containers, networks, volumes.
fn held() -> Vec<String> {
    let filter = format!("label=benchctl.issue={SERVE_ISSUE}");
    let mut out = issue_containers(SERVE_ISSUE);
    for kind in ["network", "volume"] {
        out.extend(docker_lines(&[kind, "ls", "-q", "--filter", &filter]));
    }
    out
}

#[test]
fn serve_deploys_a_multi_service_bench_with_its_hooks_and_a_close_removes_all_of_it() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[SERVE_ISSUE]);
    let _db = StandIn::build_as(SERVE_DB_IMAGE);
    let t = serve_tracker();
    t.add_issue(SERVE_ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-5-cart"]);
    repo.write("compose.yaml", &COMPOSE.replace(DB_IMAGE, SERVE_DB_IMAGE));
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", &web_script("v1"));
    repo.write("benchctl.toml", &hooks(RELEASE));
    let commit = repo.commit("three services");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .arg("--ready-timeout")
        .arg("30")
        .start();

    let a = s.github(
        "push",
        "std-5-1",
        &github_push("feature/STD-5-cart", &commit, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("STD-5 is linked", Duration::from_secs(120), |_| {
        bench_url(&t, SERVE_ISSUE).is_some()
    });
    let url = bench_url(&t, SERVE_ISSUE).unwrap();
    // no GREETING in serve's environment: the file's default
    wait_for(&url, "v1 hello count=1 migrated=yes");
    let db = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        "label=benchctl.issue=STD-5",
        "--filter",
        "label=benchctl.service=db",
    ])
    .join("");
    assert_eq!(lines_in(&db, "/data/seeds"), "1");
    assert_eq!(lines_in(&db, "/data/releases"), "1");

    t.set_status(SERVE_ISSUE, "closed");
    let a = s.tracker_close(SERVE_ISSUE);
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("STD-5 is gone", Duration::from_secs(60), |_| {
        held().is_empty() && bench_url(&t, SERVE_ISSUE).is_none()
    });
    assert!(s.log().contains("teardown hook done"), "{}", s.log());
}
