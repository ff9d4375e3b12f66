//! Deliveries that must not authenticate, move issues or repeat work: empty and weak secrets
//! (serve refuses to start), reviews from unconfigured repositories or outsiders, replays with
//! a fresh delivery id, false closes, and stalled connections.

use crate::support::serve::*;
use crate::support::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Starts `benchctl serve` with `envs` and `args`, expecting it to exit: its code and stderr.
/// A service that keeps running past 20 s fails the test.
fn serve_exit(envs: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let state = tempfile::tempdir().unwrap();
    let mut cmd = benchctl();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(state.path())
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with {envs:?} {args:?}; it must refuse to");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_refuses_empty_and_weak_secrets() {
    let _group = crate::support::group(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let blank_file = dir.path().join("blank");
    std::fs::write(&blank_file, " \n\t\n").unwrap();
    let blank = blank_file.to_string_lossy().into_owned();
    for (var, value) in [
        ("BENCHCTL_GITHUB_SECRET", "   "),
        ("BENCHCTL_GITLAB_TOKEN", "\t"),
        ("BENCHCTL_BITBUCKET_SECRET", ""),
        ("BENCHCTL_TRACKER_HOOK_SECRET", " \n "),
        ("BENCHCTL_GITHUB_SECRET_FILE", blank.as_str()),
    ] {
        let (code, err) = serve_exit(&[(var, value)], &["--allow-weak-secrets"]);
        assert_eq!(code, 2, "{var}={value:?}: {err}");
        assert!(err.contains(var.trim_end_matches("_FILE")), "{var}: {err}");
    }
    // short secrets: refused unless the operator accepts them
    let (code, err) = serve_exit(&[("BENCHCTL_GITLAB_TOKEN", "short-15-bytes!")], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("BENCHCTL_GITLAB_TOKEN") && err.contains("--allow-weak-secrets"),
        "{err}"
    );
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .env("BENCHCTL_GITLAB_TOKEN", "short-15-bytes!")
        .arg("--allow-weak-secrets")
        .start();
    // an empty token is no token
    let a = s.post(
        "gitlab",
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "")],
        b"{}",
    );
    assert_eq!(a.status, 401, "{}", a.body);
    let a = s.post(
        "gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "short-15-bytes!"),
        ],
        b"{\"object_kind\": \"push\", \"ref\": \"refs/heads/main\"}",
    );
    assert!(a.status < 300, "{} {}", a.status, a.body);
}

/// A slow branch of `repo`: its build holds a `RUN sleep` of `secs` seconds.
fn slow_branch(repo: &AppRepo, branch: &str, secs: u32) -> String {
    git(repo.path(), &["checkout", "-q", "-B", branch]);
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "COPY www /www\n",
            &format!("COPY www /www\nRUN [\"/bin/busybox\", \"sleep\", \"{secs}\"]\n"),
        ),
    );
    repo.commit("slow build")
}

#[test]
fn a_close_notification_for_an_open_issue_stops_nothing() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKD-9"]);
    let t = serve_tracker();
    t.add_issue("ATKD-9");
    let repo = AppRepo::new();
    let commit = slow_branch(&repo, "feature/ATKD-9", 6);
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .start();
    let a = s.github(
        "push",
        "atkd-9",
        &github_push("feature/ATKD-9", &commit, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("ATKD-9 is building", Duration::from_secs(30), |s| {
        s.log().contains("[ATKD-9] building")
    });
    // anyone holding the hook secret (or replaying a call) says "closed"; the issue is open
    let a = s.tracker_close("ATKD-9");
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("ATKD-9 is linked", Duration::from_secs(90), |_| {
        bench_url(&t, "ATKD-9").is_some()
    });
    s.wait_until("the close job ran", Duration::from_secs(30), |s| {
        s.log()
            .contains("ATKD-9 is not closed (status `open`); its bench stays")
    });
    let log = s.log();
    assert!(!log.contains("cancelled"), "{log}");
    assert_eq!(issue_containers("ATKD-9").len(), 1, "{log}");
    let url = bench_url(&t, "ATKD-9").unwrap();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
}
