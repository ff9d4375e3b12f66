//! What interrupted deploys leave outside benches: the commit step's container and the
//! checkout. SIGTERM's own cleanup removes them; after SIGKILL the next deploy, teardown and
//! `gc` do.

use crate::support::progress::Progress;
use crate::support::snapshot;
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The commit step's containers of `issue`.
fn build_steps(issue: &str) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        "label=benchctl.role=build-step",
        "--filter",
        &format!("label=benchctl.issue={issue}"),
    ])
}

/// The checkouts under a cache directory.
fn checkouts(cache: &Path) -> Vec<String> {
    match std::fs::read_dir(cache.join("checkouts")) {
        Ok(d) => d
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Starts a deploy and returns it once its build reaches the commit step, with what it
/// printed so far.
fn deploy_until_commit(branch: &str, repo: &AppRepo, cache: &Path) -> (Child, String) {
    let mut child = benchctl()
        .args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"])
        .env("BENCHCTL_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the rest is read in the background (the process must not block on stderr)
    let mut progress = Progress::follow(&mut child);
    if progress.until("Commit: the trailing configuration") {
        return (child, progress.seen);
    }
    let _ = child.wait();
    panic!(
        "the deploy never reached its commit step:\n{}",
        progress.finish()
    );
}

/// `benchctl gc --scope <scope> --json <extra>` with the cache; its actions as
/// (action, target, reason).
fn gc_run(cache: &Path, scope: &str, extra: &[&str]) -> Vec<(String, String, String)> {
    let mut cmd = benchctl();
    cmd.args(["gc", "--scope", scope, "--json"])
        .args(extra)
        .env("BENCHCTL_CACHE_DIR", cache);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    let field = |a: &Value, k: &str| a[k].as_str().unwrap().to_string();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (field(a, "action"), field(a, "target"), field(a, "reason")))
        .collect()
}

fn gc_actions(cache: &Path, scope: &str, dry_run: bool) -> Vec<(String, String)> {
    let extra: &[&str] = if dry_run { &["--dry-run"] } else { &[] };
    gc_run(cache, scope, extra)
        .into_iter()
        .map(|(action, _, reason)| (action, reason))
        .collect()
}

#[test]
fn a_deploy_stopped_in_its_commit_step_leaves_no_container_and_no_checkout() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LEFT-1"]);
    let cache = tempfile::tempdir().unwrap();
    let repo = AppRepo::new();
    repo.branch_with("feature/LEFT-1", "v1\n");
    let scope = repo.path_str();

    // SIGTERM: the deploy's own cleanup removes its step container; its checkout goes with it
    // (at several moments of the step: before, while and after the engine makes the container)
    for delay_ms in [0, 10, 30, 60, 100] {
        // a new commit each time: the step finishes in the background and tags its image
        repo.write("www/index.html", &format!("after {delay_ms} ms\n"));
        repo.commit("another");
        let (child, seen) = deploy_until_commit("feature/LEFT-1", &repo, cache.path());
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.code() == Some(0) {
            // the step was over sooner: nothing to interrupt at this moment
            run(benchctl().args(["teardown", "LEFT-1"]));
            continue;
        }
        assert_eq!(out.status.code(), Some(143), "{seen}");
        assert_eq!(
            build_steps("LEFT-1"),
            Vec::<String>::new(),
            "{delay_ms} ms: {seen}"
        );
        assert_eq!(checkouts(cache.path()), Vec::<String>::new());
        assert!(!issue_locked("LEFT-1"));
    }

    // SIGKILL: nothing runs after it; gc finds the checkout (and a step container if the
    // engine had made it) by what benchctl owns
    repo.write("www/index.html", "v2\n");
    repo.commit("v2");
    let (mut child, seen) = deploy_until_commit("feature/LEFT-1", &repo, cache.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(checkouts(cache.path()).len(), 1, "{seen}");
    let steps = build_steps("LEFT-1").len();

    let planned = gc_actions(cache.path(), &scope, true);
    let count = |action: &str| planned.iter().filter(|(a, _)| a == action).count();
    assert_eq!(count("remove-checkout"), 1, "{planned:?}");
    assert_eq!(count("remove-container"), steps, "{planned:?}");
    assert_eq!(
        checkouts(cache.path()).len(),
        1,
        "--dry-run removed the checkout"
    );

    gc_actions(cache.path(), &scope, false);
    assert_eq!(checkouts(cache.path()), Vec::<String>::new());
    assert_eq!(build_steps("LEFT-1"), Vec::<String>::new());
    assert!(!issue_locked("LEFT-1"));
}

#[test]
fn a_step_container_a_killed_deploy_left_goes_with_the_next_deploy_and_teardown() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LEFT-2"]);
    let cache = tempfile::tempdir().unwrap();
    let repo = AppRepo::new();
    repo.branch_with("feature/LEFT-2", "v1\n");
    let deploy = |repo: &AppRepo| {
        run(benchctl()
            .args([
                "deploy",
                "feature/LEFT-2",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .env("BENCHCTL_CACHE_DIR", cache.path()))
    };
    let r = deploy(&repo);
    assert_eq!(r.code, 0, "{}", r.all());
    // what a SIGKILL in the commit step leaves: a created, never started container of the
    // issue's image, labelled as benchctl labels it from its creation
    let leftover = || {
        let image = docker_lines(&["inspect", "--format", "{{.Image}}", "benchctl-left-2"]);
        docker_lines(&[
            "create",
            "--label",
            "benchctl.managed=true",
            "--label",
            "benchctl.issue=LEFT-2",
            "--label",
            "benchctl.role=build-step",
            "--label",
            "benchctl.deploy-id=0123456789abcdef",
            &image[0],
            "/bin/busybox",
        ])
        .remove(0)
    };
    leftover();
    assert_eq!(build_steps("LEFT-2").len(), 1);
    // benches and lists do not count it
    assert_eq!(
        issue_containers("LEFT-2").len(),
        2,
        "the bench and the step"
    );
    let r = run(benchctl().args(["list", "--json"]));
    let listed = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["issue"] == "LEFT-2")
        .count();
    assert_eq!(listed, 1, "{}", r.stdout);

    repo.write("www/index.html", "v2\n");
    repo.commit("v2");
    let r = deploy(&repo);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("a build step an interrupted deploy of LEFT-2 left"),
        "{}",
        r.stderr
    );
    assert_eq!(build_steps("LEFT-2"), Vec::<String>::new());

    leftover();
    let r = run(benchctl()
        .args(["teardown", "LEFT-2", "--json"])
        .env("BENCHCTL_CACHE_DIR", cache.path()));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(build_steps("LEFT-2"), Vec::<String>::new());
    assert_eq!(issue_containers("LEFT-2"), Vec::<String>::new());
}

#[test]
fn a_build_killed_half_way_leaves_only_marked_layers_and_gc_build_cache_removes_them() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["LEFT-3"]);
    let cache = tempfile::tempdir().unwrap();
    let repo = AppRepo::new();
    // fresh layers every run (the content differs), and a step long enough to be killed in
    let nonce = format!("{:?}", std::time::SystemTime::now());
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         RUN [\"/bin/busybox\", \"sleep\", \"30\"]\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    repo.branch_with("feature/LEFT-3", &nonce);
    let before = snapshot::Snapshot::take();

    let mut child = benchctl()
        .args([
            "deploy",
            "feature/LEFT-3",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .env("BENCHCTL_CACHE_DIR", cache.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut progress = Progress::follow(&mut child);
    progress.until("RUN [\"/bin/busybox\", \"sleep\"");
    let seen = progress.seen.clone();
    // inside the RUN step: its container runs
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    // the engine cancels the build when its client goes; the step's container goes with it
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut left = snapshot::Snapshot::unlabelled_since(&before);
    while !left.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        left = snapshot::Snapshot::unlabelled_since(&before);
    }
    assert_eq!(
        left,
        Vec::<String>::new(),
        "unmarked leftovers; the deploy said:\n{seen}"
    );

    let layers = || {
        docker_lines(&[
            "images",
            "-q",
            "--no-trunc",
            "--filter",
            "dangling=true",
            "--filter",
            &format!("label=benchctl.repo={}", repo.path_str()),
        ])
    };
    let killed = layers();
    assert!(
        !killed.is_empty(),
        "the killed build left no layer:\n{seen}"
    );

    // plain gc leaves the build cache alone; --build-cache lists, then removes them
    gc_run(cache.path(), &repo.path_str(), &[]);
    assert_eq!(layers(), killed);
    let gc = |dry: bool| {
        let extra: &[&str] = if dry {
            &["--build-cache", "--dry-run"]
        } else {
            &["--build-cache"]
        };
        gc_run(cache.path(), &repo.path_str(), extra)
            .into_iter()
            .filter(|(action, _, _)| action == "remove-layer")
            .map(|(_, target, _)| target)
            .collect::<Vec<_>>()
    };
    let mut planned = gc(true);
    planned.sort();
    let mut expected = killed.clone();
    expected.sort();
    assert_eq!(planned, expected);
    assert_eq!(layers(), killed, "--dry-run removed layers");
    gc(false);
    assert_eq!(layers(), Vec::<String>::new());
    // the whole chain went: nothing the build made for the repository is left
    let marked = docker_lines(&[
        "images",
        "-aq",
        "--filter",
        &format!("label=benchctl.repo={}", repo.path_str()),
    ]);
    assert_eq!(marked, Vec::<String>::new());
}

/// The swarm backend looks for an HTTP client in the new image in a never-started container
/// (for the service's health check). A deploy killed then leaves it: labelled as the deploy's
/// step from its creation, so that teardown (and the next deploy, and gc) remove it.
#[test]
fn a_swarm_deploy_killed_while_it_probes_its_image_leaves_only_a_step_teardown_removes() {
    let _group = crate::support::group(module_path!());
    let _swarm = crate::support::swarm::SwarmGuard::acquire();
    let _c = Cleanup::issues(&["LEFT-4"]);
    let repo = AppRepo::new();
    let probes = || {
        docker_lines(&[
            "ps",
            "-a",
            "--filter",
            "name=benchctl-probe-",
            "--filter",
            "label=benchctl.issue=LEFT-4",
            "--format",
            "{{.Names}} role={{.Label \"benchctl.role\"}} deploy={{.Label \"benchctl.deploy-id\"}}",
        ])
    };
    let mut left = Vec::new();
    for delay_ms in [0, 2, 5, 10, 20, 40] {
        repo.write("www/index.html", &format!("{delay_ms}\n"));
        repo.commit("another");
        let mut child = benchctl()
            .env("BENCHCTL_BACKEND", "swarm")
            .env("BENCHCTL_PUBLISH_MODE", "host")
            .args([
                "deploy",
                "main",
                "--repo",
                &repo.path_str(),
                "--issue",
                "LEFT-4",
            ])
            .args(["--no-link", "--cpus", "0.1", "--memory", "64m"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut progress = Progress::follow(&mut child);
        progress.until("==> starting the new bench");
        let seen = progress.seen.clone();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        for p in probes() {
            assert!(
                p.contains(" role=build-step deploy=") && !p.ends_with("deploy="),
                "a probe left unlabelled as a step ({delay_ms} ms): {p}\n{seen}"
            );
            left.push(p);
        }
    }
    let r = run(benchctl()
        .env("BENCHCTL_BACKEND", "swarm")
        .args(["teardown", "LEFT-4"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(probes(), Vec::<String>::new(), "after teardown");
    eprintln!("probe containers the kills left: {left:?}");
}
