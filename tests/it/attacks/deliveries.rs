//! Deliveries that must not authenticate, move issues or repeat work: empty and weak secrets
//! (serve refuses to start), reviews from unconfigured repositories or outsiders, replays with
//! a fresh delivery id, false closes, and stalled connections.

use crate::support::serve::*;
use crate::support::*;
use std::time::{Duration, Instant};

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

/// `fixture` with each JSON-pointer `edits` applied, as bytes.
fn edited(fixture: &str, edits: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let mut v = fixture_json(fixture);
    for (pointer, value) in edits {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} not in {fixture}")) = value.clone();
    }
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn reviews_move_issues_only_from_configured_repositories_and_trusted_reviewers() {
    use serde_json::json;
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    for k in ["ATKD-7", "ATKD-8"] {
        t.add_issue(k);
    }
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg("acme/app=https://git.invalid/acme/app.git")
        .start();
    let review = |repo: &str, who: &str, branch: &str| {
        edited(
            "github/pull_request_review.submitted.json",
            &[
                ("/review/state", json!("approved")),
                ("/review/author_association", json!(who)),
                ("/repository/full_name", json!(repo)),
                ("/pull_request/head/ref", json!(branch)),
            ],
        )
    };
    // another repository's review names our issue; an outsider approves; an outsider closes
    // their own pull request: each acknowledged (no retry), nothing moves
    let attacks = [
        review("evil/app", "OWNER", "feature/ATKD-7"),
        review("acme/app", "NONE", "feature/ATKD-7"),
        review("acme/app", "CONTRIBUTOR", "feature/ATKD-7"),
    ];
    for (i, body) in attacks.iter().enumerate() {
        let a = s.github("pull_request_review", &format!("atkd-7-{i}"), body);
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.contains("ignored"), "{}", a.body);
    }
    let closed = edited(
        "github/pull_request.closed.json",
        &[
            ("/repository/full_name", json!("acme/app")),
            ("/pull_request/head/ref", json!("feature/ATKD-7")),
            (
                "/pull_request/author_association",
                json!("FIRST_TIME_CONTRIBUTOR"),
            ),
        ],
    );
    let a = s.github("pull_request", "atkd-7-close", &closed);
    assert_eq!(a.status, 200, "{}", a.body);
    // GitLab: a merge request of an unconfigured project
    let a = s.post(
        "gitlab",
        &[
            ("X-Gitlab-Event", "Merge Request Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ],
        &edited(
            "gitlab/merge-request-event.json",
            &[
                ("/object_attributes/action", json!("approved")),
                ("/object_attributes/source_branch", json!("feature/ATKD-7")),
            ],
        ),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("gitlabhq/gitlab-test"), "{}", a.body);

    // a member's approval in the configured repository moves the issue
    let a = s.github(
        "pull_request_review",
        "atkd-8",
        &review("acme/app", "MEMBER", "feature/ATKD-8"),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("ATKD-8 moved", Duration::from_secs(30), |_| {
        t.status("ATKD-8").as_deref() == Some("readyForTest")
    });
    assert_eq!(t.status("ATKD-7").as_deref(), Some("open"));
    let series = |source: &str, reason: &str| {
        s.metric(&format!(
            "benchctl_deliveries_refused_total{{source=\"{source}\",reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(series("github", "unconfigured_repository"), 1);
    assert_eq!(series("github", "reviewer_association"), 3);
    assert_eq!(series("gitlab", "unconfigured_repository"), 1);
}

#[test]
fn a_captured_signed_delivery_replayed_under_a_fresh_id_does_nothing() {
    use serde_json::json;
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    t.add_issue("ATKD-6");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg("acme/app=https://git.invalid/acme/app.git")
        .start();
    let approval = edited(
        "github/pull_request_review.submitted.json",
        &[
            ("/review/state", json!("approved")),
            ("/repository/full_name", json!("acme/app")),
            ("/pull_request/head/ref", json!("feature/ATKD-6")),
        ],
    );
    let a = s.github("pull_request_review", "atkd-6-original", &approval);
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("ATKD-6 moved", Duration::from_secs(30), |_| {
        t.status("ATKD-6").as_deref() == Some("readyForTest")
    });
    // the team moves the issue back; an attacker replays the captured approval
    t.set_status("ATKD-6", "open");
    for id in ["atkd-6-replay-1", "atkd-6-replay-2", "atkd-6-original"] {
        let a = s.github("pull_request_review", id, &approval);
        assert_eq!(a.status, 200, "{id}: {}", a.body);
        assert_eq!(a.json()["duplicate"], true, "{id}: {}", a.body);
    }
    // a restart remembers too
    drop(s);
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg("acme/app=https://git.invalid/acme/app.git")
        .start();
    let a = s.github("pull_request_review", "atkd-6-replay-3", &approval);
    assert_eq!(a.json()["duplicate"], true, "{}", a.body);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(t.status("ATKD-6").as_deref(), Some("open"));
    assert_eq!(t.executed().len(), 1, "{:?}", t.executed());
}

#[test]
fn stalled_connections_are_closed_at_their_deadlines_and_do_not_hold_shutdown() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let _group = crate::support::group(module_path!());
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .args(&["--header-timeout", "2", "--body-timeout", "3"])
        .start();
    let started = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..200 {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        match i % 3 {
            // connects and says nothing
            0 => {}
            // headers that never end
            1 => c
                .write_all(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pi")
                .unwrap(),
            // a body dripped and never finished
            _ => c
                .write_all(
                    b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"zen\":",
                )
                .unwrap(),
        }
        stalled.push(c);
    }
    // meanwhile a valid delivery is acknowledged promptly
    let asked = Instant::now();
    let a = s.github(
        "ping",
        "atkd-ping",
        b"{\"zen\": \"Keep it logically awesome.\"}",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // every stalled connection is closed by the server within its deadline (and a margin)
    for (i, c) in stalled.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = Vec::new();
        let r = c.read_to_end(&mut buf);
        assert!(
            r.is_ok() || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "connection {i} still open after {:?}: {r:?}",
            started.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    let a = s.get("/healthz");
    assert_eq!(a.status, 200);

    // shutdown does not wait for stalled clients
    let s = ServeSetup::new(None, state.path())
        .args(&["--header-timeout", "300", "--body-timeout", "300"])
        .start();
    let hold: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            c.write_all(b"POST /hooks/github HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
                .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = s;
        let status = s.terminate();
        let _ = tx.send(status);
    });
    let status = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("serve waited for stalled clients on SIGTERM");
    assert!(status.success(), "{status:?}");
    drop(hold);
}
