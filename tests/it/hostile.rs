//! Hostile input and secrets: branch names are checked as git refs and never reach a shell,
//! names are slugged, keys normalized; a canary token never shows anywhere; an unreachable
//! engine is named.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use std::path::Path;

const CANARY: &str = "canary-token-d3adb33f-42";

#[test]
fn invalid_branch_names_and_keys_are_refused_before_any_work() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["HOS-1"]);
    let tracker = FakeTracker::start(Auth::OAuth(CANARY), Org::Org("org-1"));
    let repo = AppRepo::new();
    let long = format!("feature/HOS-1-{}", "x".repeat(300));
    for bad in [
        "../x",
        "-rf",
        "a b",
        "x..y",
        "feature/HOS-1/../../etc",
        "HOS-1\nrm",
        "HOS-1.lock",
        "feature/HOS-1@{0}",
        "HOS-1~1",
        "HOS-1:x",
        "HOS-1^",
        "*HOS-1",
        "HOS-1\\x",
    ] {
        let r = run(benchctl()
            .args(["deploy", "--repo", &repo.path_str(), "--", bad])
            .tracker(&tracker, CANARY, "org-1"));
        assert_eq!(r.code, 2, "{bad:?} accepted: {}", r.all());
        assert!(!r.all().contains(CANARY));
    }
    for bad_key in [
        "A-1;rm",
        "$(id)-1",
        "Ü-1",
        "-1",
        &format!("{}-1", "A".repeat(100)),
    ] {
        let r = run(benchctl().args([
            "deploy",
            "x",
            "--repo",
            &repo.path_str(),
            "--issue",
            bad_key,
        ]));
        assert_eq!(r.code, 2, "{bad_key:?} accepted: {}", r.all());
        let r = run(benchctl().args(["teardown", "--", bad_key]));
        assert_eq!(r.code, 2, "{bad_key:?} accepted by teardown: {}", r.all());
    }
    assert!(tracker.requests().is_empty());
    // a 300-character name is a valid ref: it is looked for, and not found
    let r = run(benchctl().args(["deploy", &long, "--repo", &repo.path_str()]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("not found in repository"), "{}", r.stderr);
    // no flag takes a token
    let r = run(benchctl().args(["deploy", "HOS-1", "--tracker-token", CANARY]));
    assert_eq!(r.code, 2);
}

#[test]
fn shell_looking_and_long_branch_names_are_plain_data() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["HOS-2", "HOS-3"]);
    let marker = std::env::temp_dir().join("benchctl-pwned-HOS2");
    let _ = std::fs::remove_file(&marker);
    let repo = AppRepo::new();
    let evil = format!(
        "feature/HOS-2-\u{fc}n\u{ef}code-$(touch${{IFS}}{});rm-rf",
        marker.display()
    );
    repo.branch_with(&evil, "evil\n");
    let r = run(benchctl().args(["deploy", &evil, "--repo", &repo.path_str(), "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !Path::new(&marker).exists(),
        "the branch name reached a shell"
    );
    let v = r.json();
    assert_eq!(v["issue"], "HOS-2");
    assert_eq!(v["container"], "benchctl-hos-2");
    let label = docker_lines(&[
        "inspect",
        "benchctl-hos-2",
        "--format",
        "{{index .Config.Labels \"benchctl.branch\"}}",
    ]);
    assert_eq!(label, vec![evil.clone()]);

    // a long branch (nested), a lower-case key
    let long = format!(
        "feature/hos-3-{}/{}/{}",
        "a".repeat(90),
        "b".repeat(90),
        "c".repeat(90)
    );
    repo.branch_with(&long, "long\n");
    let r = run(benchctl().args(["deploy", &long, "--repo", &repo.path_str(), "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let v = r.json();
    assert_eq!(v["issue"], "HOS-3");
    assert_eq!(v["branch"], long.as_str());
    assert_eq!(
        http_get(v["url"].as_str().unwrap()).as_deref(),
        Some("long\n")
    );
    // label filters are exact: HOS-3's containers are not HOS-2's
    assert_eq!(issue_containers("HOS-3").len(), 1);
    assert_eq!(issue_containers("HOS-2").len(), 1);
    assert!(issue_containers("HOS-").is_empty());
}

#[test]
fn a_canary_token_never_appears_in_output_labels_or_inspect() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["HOS-4"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/HOS-4", "canary\n");
    let tracker = FakeTracker::start(Auth::OAuth(CANARY), Org::Org("org-1"));
    tracker.add_issue("HOS-4");
    let deploy = |extra: &[&str]| {
        run(benchctl()
            .args(["deploy", "feature/HOS-4", "--repo", &repo.path_str()])
            .args(extra)
            .tracker(&tracker, CANARY, "org-1"))
    };
    // the Tracker repeats the token in its error: redacted
    tracker.echo_auth_next();
    let r = deploy(&[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("token rejected: OAuth ***"),
        "{}",
        r.stderr
    );
    let mut outputs = vec![r.all()];
    tracker.echo_auth_next();
    let r = deploy(&["--json"]);
    assert_eq!(r.code, 2, "{}", r.all());
    outputs.push(r.all());
    let r = deploy(&["--force"]);
    assert_eq!(r.code, 0, "{}", r.all());
    outputs.push(r.all());
    for args in [
        vec!["list", "--json"],
        vec!["status", "HOS-4", "--json"],
        vec!["logs", "HOS-4"],
    ] {
        outputs.push(run(benchctl().args(&args).env("BENCHCTL_TRACKER_TOKEN", CANARY)).all());
    }
    for (i, o) in outputs.iter().enumerate() {
        assert!(!o.contains(CANARY), "output {i} leaks the token:\n{o}");
    }
    // nothing benchctl created carries it
    let filter = "label=benchctl.issue=HOS-4";
    let mut ids = docker_lines(&["ps", "-aq", "--filter", filter]);
    ids.extend(docker_lines(&["images", "-q", "--filter", filter]));
    assert!(
        ids.len() >= 3,
        "bench, result marker and image expected: {ids:?}"
    );
    let mut args = vec!["inspect"];
    args.extend(ids.iter().map(String::as_str));
    let inspected = docker_lines(&args).join("\n");
    assert!(
        !inspected.contains(CANARY),
        "docker inspect shows the token"
    );
}

#[test]
fn an_unreachable_engine_is_named() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    repo.branch_with("feature/HOS-5", "x\n");
    for args in [
        vec!["list"],
        vec!["deploy", "feature/HOS-5", "--repo", &repo.path_str()],
    ] {
        let r = run(benchctl()
            .args(&args)
            .env("DOCKER_HOST", "unix:///nonexistent/benchctl-test.sock"));
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(
            r.stderr
                .contains("DOCKER_HOST=unix:///nonexistent/benchctl-test.sock"),
            "{}",
            r.stderr
        );
    }
}
