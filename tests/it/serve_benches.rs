//! `benchctl serve` with real benches: pushes (GitHub, GitLab) deploy and redeploy through the
//! same code as `benchctl deploy`, a deleted branch (Bitbucket DC) tears the bench down, the
//! Tracker's close trigger tears it down, a close that arrives during a deploy wins, and
//! messengers (a fake Slack and a failing Telegram) get their messages without failing a deploy.

use crate::support::serve::*;
use crate::support::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn pushes_deploy_and_redeploy_and_a_deleted_branch_tears_the_bench_down() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["SRVP-1", "SRVP-2"]);
    let t = serve_tracker();
    t.add_issue("SRVP-1").add_issue("SRVP-2");
    let repo = AppRepo::new();
    // the branch's own settings apply to the service's deploys too
    repo.write(
        "benchctl.toml",
        "health-path = \"/index.html\"\n[env]\nFROM_REPO = \"yes\"\n",
    );
    let first = repo.branch_with("feature/SRVP-1-login", "first\n");
    let slack = Recorder::start(200);
    let telegram = Recorder::start(500);
    let state = tempfile::tempdir().unwrap();
    let repo_arg = |name: &str| format!("{name}={}", repo.path_str());
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&repo_arg("acme/app"))
        .arg("--repo")
        .arg(&repo_arg("ACME/app"))
        .arg("--ready-timeout")
        .arg("20")
        .env(
            "BENCHCTL_SLACK_WEBHOOK_URL",
            &format!("{}/services/T0/B0/slack-canary-1f1f", slack.url),
        )
        .env("BENCHCTL_TELEGRAM_BOT_TOKEN", "123456:telegram-canary-2e2e")
        .env("BENCHCTL_TELEGRAM_CHAT_ID", "-100200300")
        .env("BENCHCTL_TELEGRAM_API_URL", &telegram.url)
        .start();

    // a push to an unconfigured repository is acknowledged and ignored
    let mut other = fixture_json("github/push.json");
    other["ref"] = json!("refs/heads/feature/SRVP-1-login");
    other["deleted"] = json!(false);
    let a = s.github("push", "p-0", &serde_json::to_vec(&other).unwrap());
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("is not configured"), "{}", a.body);

    // GitHub push -> the bench is built, answers, and is linked; two more pushes of the branch
    // arrive meanwhile: the newest replaces the queued older one
    for (i, d) in ["p-1", "p-1b", "p-1c"].into_iter().enumerate() {
        // distinct deliveries have distinct bodies (an identical one is a replay)
        let mut push: serde_json::Value =
            serde_json::from_slice(&github_push("feature/SRVP-1-login", &first, false)).unwrap();
        push["before"] = json!(format!("{i:040}"));
        let a = s.github("push", d, &serde_json::to_vec(&push).unwrap());
        assert_eq!(a.status, 202, "{}", a.body);
    }
    s.wait_until("SRVP-1 is linked", Duration::from_secs(90), |_| {
        bench_url(&t, "SRVP-1").is_some()
    });
    let url = bench_url(&t, "SRVP-1").unwrap();
    assert_eq!(http_get(&url).as_deref(), Some("first\n"));
    assert_eq!(issue_containers("SRVP-1").len(), 1);
    let id = issue_containers("SRVP-1")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let env = docker_lines(&["inspect", "-f", "{{json .Config.Env}}", &id]).join("");
    assert!(env.contains("FROM_REPO=yes"), "{env}");

    // GitLab push of a new commit -> redeployed with the new content
    let second = repo.branch_with("feature/SRVP-1-login", "second\n");
    let a = s.post(
        "gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
            ("X-Gitlab-Event-UUID", "gl-1"),
        ],
        &gitlab_push("feature/SRVP-1-login", &second),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until(
        "SRVP-1 serves the second commit",
        Duration::from_secs(90),
        |_| {
            bench_url(&t, "SRVP-1")
                .and_then(|u| http_get(&u))
                .as_deref()
                == Some("second\n")
        },
    );
    let containers = issue_containers("SRVP-1");
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert!(
        docker_lines(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"benchctl.commit\"}}",
            containers[0].split(' ').next().unwrap()
        ]) == vec![second.clone()]
    );

    // a branch whose build fails: the deploy fails, Slack says so, nothing runs
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/SRVP-2-broken"],
    );
    repo.write("Dockerfile", "FROM scratch\nCOPY missing-file /x\n");
    let broken = repo.commit("broken");
    let a = s.github(
        "push",
        "p-2",
        &github_push("feature/SRVP-2-broken", &broken, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until(
        "Slack heard of the failure",
        Duration::from_secs(60),
        |_| {
            slack
                .texts()
                .iter()
                .any(|m| m.contains("SRVP-2") && m.contains("failed"))
        },
    );
    assert!(issue_containers("SRVP-2").is_empty());

    // Bitbucket DC: the branch is deleted -> the bench goes, the field is cleared
    let a = s.post(
        "bitbucket",
        &[
            ("X-Event-Key", "repo:refs_changed"),
            ("X-Request-Id", "bb-del-1"),
            (
                "X-Hub-Signature",
                &sign(
                    BITBUCKET_SECRET,
                    &bitbucket_delete("feature/SRVP-1-login", &second),
                ),
            ),
        ],
        &bitbucket_delete("feature/SRVP-1-login", &second),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("SRVP-1's bench is gone", Duration::from_secs(60), |_| {
        issue_containers("SRVP-1").is_empty() && bench_url(&t, "SRVP-1").is_none()
    });
    assert!(http_get(&url).is_none());
    // the notifications follow the field's clearing: wait for them rather than race them
    s.wait_until(
        "Slack and Telegram heard of the removal",
        Duration::from_secs(30),
        |_| {
            slack
                .texts()
                .iter()
                .any(|m| m.contains("SRVP-1 was removed"))
                && telegram.requests.lock().unwrap().len() >= 4
        },
    );

    // messages: up twice (first and second commit), failed once, removed once
    let texts = slack.texts();
    let up: Vec<_> = texts
        .iter()
        .filter(|m| m.contains("SRVP-1 is up"))
        .collect();
    assert_eq!(up.len(), 2, "{texts:?}");
    assert!(
        up[0].contains(&url) && up[0].contains(&first[..12]),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|m| m.contains("SRVP-1 was removed")
                && m.contains("feature/SRVP-1-login was deleted")),
        "{texts:?}"
    );
    // Telegram got the same messages at the Bot API path, answered 500: deploys still passed,
    // the failure is a warning without the bot token
    let tg = telegram.requests.lock().unwrap().clone();
    assert!(tg.len() >= 4, "{tg:?}");
    assert_eq!(tg[0].0, "/bot123456:telegram-canary-2e2e/sendMessage");
    assert_eq!(tg[0].1["chat_id"], "-100200300");
    let log = s.log();
    assert!(
        log.contains("Telegram notification not sent: answered 500"),
        "{log}"
    );
    for secret in [
        "telegram-canary-2e2e",
        "slack-canary-1f1f",
        TOKEN,
        GITHUB_SECRET,
    ] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    assert_eq!(s.metric("benchctl_deploys_total{result=\"deployed\"}"), 2);
    assert_eq!(s.metric("benchctl_deploys_total{result=\"failed\"}"), 1);
    assert!(
        s.metric("benchctl_jobs_total{kind=\"deploy\",result=\"superseded\"}") >= 1,
        "{}",
        s.get("/metrics").body
    );
    assert!(log.contains("superseded by job"), "{log}");
}

#[test]
fn the_trackers_close_tears_the_bench_down_and_wins_over_a_running_deploy() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["SRVC-1", "SRVC-2", "SRVC-3", "SRVC-4"]);
    let t = serve_tracker();
    for k in ["SRVC-1", "SRVC-2", "SRVC-3", "SRVC-4"] {
        t.add_issue(k);
    }
    let repo = AppRepo::new();
    let c1 = repo.branch_with("feature/SRVC-1", "one\n");
    let c4 = repo.branch_with("feature/SRVC-4", "four\n");
    // SRVC-3 builds slowly (a RUN step of 8 s), so a close can arrive mid-deploy
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/SRVC-3-slow"],
    );
    repo.write(
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"8\"]\n{}",
            APP_DOCKERFILE.trim_start_matches("FROM scratch\nCOPY busybox /bin/busybox\n")
        ),
    );
    let c3 = repo.commit("slow build");
    let slack = Recorder::start(200);
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .arg("--max-parallel")
        .arg("3")
        .env("BENCHCTL_SLACK_WEBHOOK_URL", &slack.url)
        .start();

    for (i, (branch, commit)) in [("feature/SRVC-1", &c1), ("feature/SRVC-4", &c4)]
        .into_iter()
        .enumerate()
    {
        let a = s.github(
            "push",
            &format!("c-{i}"),
            &github_push(branch, commit, false),
        );
        assert_eq!(a.status, 202, "{}", a.body);
    }
    s.wait_until(
        "SRVC-1 and SRVC-4 are linked",
        Duration::from_secs(90),
        |_| bench_url(&t, "SRVC-1").is_some() && bench_url(&t, "SRVC-4").is_some(),
    );
    let url1 = bench_url(&t, "SRVC-1").unwrap();

    // the trigger fires for SRVC-1 (closed), SRVC-2 (closed, never had a bench) and SRVC-4
    // (the trigger says so, but the issue is open again): only SRVC-1's bench goes
    t.set_status("SRVC-1", "closed")
        .set_status("SRVC-2", "closed");
    for k in ["SRVC-1", "SRVC-2", "SRVC-4"] {
        let a = s.tracker_close(k);
        assert_eq!(a.status, 202, "{}", a.body);
    }
    s.wait_until("SRVC-1's bench is gone", Duration::from_secs(60), |_| {
        issue_containers("SRVC-1").is_empty() && bench_url(&t, "SRVC-1").is_none()
    });
    assert!(http_get(&url1).is_none());
    s.wait_until(
        "the three close jobs finished",
        Duration::from_secs(30),
        |s| {
            s.log().contains("SRVC-2 has no bench; nothing to remove")
                && s.log()
                    .contains("SRVC-4 is not closed (status `open`); its bench stays")
        },
    );
    assert_eq!(issue_containers("SRVC-4").len(), 1);
    assert!(bench_url(&t, "SRVC-4").is_some());
    s.wait_until(
        "Slack heard of SRVC-1's removal",
        Duration::from_secs(30),
        |_| {
            slack
                .texts()
                .iter()
                .any(|m| m.contains("SRVC-1 was removed") && m.contains("closed"))
        },
    );

    // SRVC-3: a slow deploy runs; the issue closes meanwhile -> the deploy is cancelled, nothing
    // of SRVC-3 is left, and the bench does not come back
    let a = s.github(
        "push",
        "c-3",
        &github_push("feature/SRVC-3-slow", &c3, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("SRVC-3 is building", Duration::from_secs(30), |s| {
        s.log().contains("[SRVC-3] building")
    });
    t.set_status("SRVC-3", "closed");
    let a = s.tracker_close("SRVC-3");
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until(
        "the close of SRVC-3 finished",
        Duration::from_secs(60),
        |s| s.log().contains("cancelled: the issue closed") && s.finished_jobs("done") >= 7,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        assert!(
            issue_containers("SRVC-3").is_empty(),
            "{:?}\n{}",
            issue_containers("SRVC-3"),
            s.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(bench_url(&t, "SRVC-3").is_none());
    assert!(!issue_locked("SRVC-3"));
    // a push to the closed issue's branch does not bring its bench back either
    // (another push: its body differs, an identical one would be a replay)
    let mut again: serde_json::Value =
        serde_json::from_slice(&github_push("feature/SRVC-3-slow", &c3, false)).unwrap();
    again["before"] = json!(c3);
    let a = s.github("push", "c-3b", &serde_json::to_vec(&again).unwrap());
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("the push was refused", Duration::from_secs(30), |s| {
        s.log()
            .contains("SRVC-3 is closed (`closed`): branch feature/SRVC-3-slow is not deployed")
    });
    assert!(issue_containers("SRVC-3").is_empty());
}

#[test]
fn deploy_and_teardown_from_the_command_line_notify_too() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["SRVN-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/SRVN-1", "n\n");
    let slack = Recorder::start(200);
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(templates.path().join("notify")).unwrap();
    std::fs::write(
        templates.path().join("notify/bench-up.txt"),
        "UP {issue} {url}\n",
    )
    .unwrap();
    let with_slack = |args: &[&str]| {
        let mut cmd = benchctl();
        cmd.args(args)
            .env("BENCHCTL_SLACK_WEBHOOK_URL", &slack.url)
            .env("BENCHCTL_TEMPLATES_DIR", templates.path());
        run(&mut cmd)
    };
    let r = with_slack(&[
        "deploy",
        "feature/SRVN-1",
        "--repo",
        &repo.path_str(),
        "--json",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    // a broken redeploy: the old bench stays, the messenger hears of the failure
    repo.write("Dockerfile", "FROM scratch\nCOPY missing-file /x\n");
    repo.commit("broken");
    let r = with_slack(&["deploy", "feature/SRVN-1", "--repo", &repo.path_str()]);
    assert_eq!(r.code, 1, "{}", r.all());
    let r = with_slack(&["teardown", "SRVN-1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let texts = slack.texts();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts[0], format!("UP SRVN-1 {url}"));
    assert!(
        texts[1].contains("SRVN-1 failed") && texts[1].contains("missing-file"),
        "{texts:?}"
    );
    assert!(texts[2].contains("SRVN-1 was removed"), "{texts:?}");
    // a messenger that fails is a warning, the deploy still succeeds
    git(
        repo.path(),
        &["checkout", "-q", "HEAD~1", "--", "Dockerfile"],
    );
    repo.commit("fixed");
    let mut cmd = benchctl();
    cmd.args(["deploy", "feature/SRVN-1", "--repo", &repo.path_str()])
        .env(
            "BENCHCTL_SLACK_WEBHOOK_URL",
            "http://127.0.0.1:9/hook-canary-3c3c",
        );
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("Slack notification not sent"),
        "{}",
        r.stderr
    );
    assert!(!r.all().contains("hook-canary-3c3c"), "{}", r.all());
}
