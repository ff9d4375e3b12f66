//! Issue 29, medium 6: a teardown hook cannot wedge teardown and gc. A branch may ask for a
//! hook timeout only up to the operator's `max-hook-timeout` (exit 2 above it); a bench
//! deployed with a year-long teardown hook (the operator raised the ceiling then) is still
//! removed by `gc --ttl 1s` within a bound, its hook stopped at gc's `--max-hook-timeout`,
//! together with a second expired bench.

use crate::support::*;
use std::time::{Duration, Instant};

const YEAR: &str = "31536000";

fn stack(repo: &AppRepo, branch: &str, hook_timeout: &str) {
    git(repo.path(), &["checkout", "-q", "-B", branch, "main"]);
    repo.write("compose.yaml", &web_compose(&[]));
    repo.write(
        "benchctl.toml",
        &format!(
            "[hooks.teardown]\nservice = \"web\"\ncommand = \"/bin/busybox sleep {YEAR}\"\n\
             timeout = {hook_timeout}\n"
        ),
    );
    repo.commit("a teardown hook that never ends");
}

#[test]
fn a_year_long_teardown_hook_wedges_neither_gc_nor_the_next_bench() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKH-1", "ATKH-2"]);
    let repo = AppRepo::new();

    // the branch asks for a year: refused before any work
    stack(&repo, "feature/ATKH-1", YEAR);
    let deploy = |branch: &str, extra: &[&str]| {
        run(benchctl()
            .args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"])
            .args(extra))
    };
    let r = deploy("feature/ATKH-1", &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("hooks.teardown.timeout") && r.stderr.contains("--max-hook-timeout"),
        "{}",
        r.stderr
    );
    // the operator raised the ceiling when it was deployed
    let r = deploy("feature/ATKH-1", &["--max-hook-timeout", YEAR]);
    assert_eq!(r.code, 0, "{}", r.all());
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/ATKH-2", "main"],
    );
    let r = deploy("feature/ATKH-2", &[]);
    assert_eq!(r.code, 0, "{}", r.all());

    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let r = run(benchctl().args(["gc", "--ttl", "1s", "--max-hook-timeout", "3"]));
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        took < Duration::from_secs(60),
        "gc took {took:?}: {}",
        r.all()
    );
    for issue in ["ATKH-1", "ATKH-2"] {
        assert!(
            all_issue_containers(issue).is_empty(),
            "{issue} stays: {:?}\n{}",
            all_issue_containers(issue),
            r.all()
        );
    }
}
