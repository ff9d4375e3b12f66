//! A branch posting into the team's messengers as someone else, and credentials in clone URLs:
//! a branch's text reaches Slack escaped (no `<!channel>`, no disguised link) and Telegram as
//! plain text; a token in `--repo`'s URL never reaches a label, the output or an error.

use crate::support::serve::Recorder;
use crate::support::*;

#[test]
fn a_branchs_text_reaches_slack_escaped_and_telegram_as_plain_text() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKM-1"]);
    let slack = Recorder::start(200);
    let telegram = Recorder::start(200);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKM-1"]);
    // the failing command is quoted in the build error that the messengers hear of
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "COPY www /www\n",
            "COPY www /www\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo '<!channel> <https://evil.example/login|the docs>'; exit 3\"]\n",
        ),
    );
    repo.commit("a loud failure");
    let r = run(benchctl()
        .args(["deploy", "feature/ATKM-1", "--repo", &repo.path_str()])
        .env("BENCHCTL_SLACK_WEBHOOK_URL", &slack.url)
        .env("BENCHCTL_TELEGRAM_BOT_TOKEN", "123:telegram-canary-3c3c")
        .env("BENCHCTL_TELEGRAM_CHAT_ID", "-1001")
        .env("BENCHCTL_TELEGRAM_API_URL", &telegram.url));
    assert_eq!(r.code, 1, "{}", r.all());
    let texts = slack.texts();
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(
        texts[0].contains("&lt;!channel&gt;")
            && texts[0].contains("&lt;https://evil.example/login|the docs&gt;"),
        "{texts:?}"
    );
    assert!(
        !texts[0].contains('<') && !texts[0].contains('>'),
        "{texts:?}"
    );
    let tg = telegram.requests.lock().unwrap().clone();
    assert_eq!(tg.len(), 1, "{tg:?}");
    assert!(tg[0].1.get("parse_mode").is_none(), "{tg:?}");
    assert!(
        tg[0].1["text"].as_str().unwrap().contains("<!channel>"),
        "{tg:?}"
    );
}

#[test]
fn credentials_in_a_clone_url_never_reach_labels_or_output() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKM-2"]);
    const CANARY: &str = "cred-canary-6f6f";
    let repo = AppRepo::new();
    repo.branch_with("feature/ATKM-2", "served\n");
    let served = Served::new(&repo);
    let url = served
        .url
        .replace("git://", &format!("git://deploy:{CANARY}@"));
    let r = run(benchctl().args([
        "--json",
        "deploy",
        "feature/ATKM-2",
        "--repo",
        &url,
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(CANARY), "{}", r.all());
    let mut seen = Vec::new();
    for id in docker_lines(&["ps", "-aq", "--filter", "label=benchctl.issue=ATKM-2"])
        .into_iter()
        .chain(docker_lines(&[
            "images",
            "-q",
            "--filter",
            "label=benchctl.issue=ATKM-2",
        ]))
    {
        let labels = docker_lines(&["inspect", "-f", "{{json .Config.Labels}}", &id]).join("");
        assert!(!labels.contains(CANARY), "{labels}");
        assert!(
            labels.contains("deploy@") || labels.contains("git://127.0.0.1"),
            "{labels}"
        );
        seen.push(id);
    }
    assert!(seen.len() >= 2, "{seen:?}");
    let r = run(benchctl().args(["--json", "list"]));
    assert!(!r.all().contains(CANARY), "{}", r.all());
    assert!(r.stdout.contains("ATKM-2"), "{}", r.stdout);
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("benchctl-cache/repos");
    for e in std::fs::read_dir(cache).unwrap().flatten() {
        assert!(!e.file_name().to_string_lossy().contains(CANARY));
    }
    // an unreachable URL with a token: the error names the repository, not the token
    let r = run(benchctl().args([
        "deploy",
        "feature/ATKM-2",
        "--repo",
        &format!("https://user:{CANARY}@127.0.0.1:1/app.git"),
    ]));
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(CANARY), "{}", r.all());
    assert!(r.stderr.contains("127.0.0.1:1/app.git"), "{}", r.stderr);
    let r = run(benchctl().args(["teardown", "ATKM-2", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
