//! `benchctl serve` over real HTTP: authenticity before anything else (HMAC-SHA256 with the
//! captured payloads of `tests/fixtures/webhooks/`, GitHub's published test vector, tokens),
//! 401/403/413, duplicate deliveries, the review flow of every platform against the fake
//! Tracker (the queue's durability: serve_queue.rs).

use crate::support::serve::*;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn deliveries_are_authenticated_before_anything_else() {
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .env("BENCHCTL_GITHUB_SECRET", "It's a Secret to Everybody")
        .without_env("BENCHCTL_GITLAB_TOKEN")
        .arg("--max-body")
        .arg("64k")
        .start();

    // GitHub's published test vector: the signature is accepted (the body then is no JSON: 400)
    let vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let a = s.post(
        "github",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", vector)],
        b"Hello, World!",
    );
    assert_eq!(a.status, 400, "{}", a.body);
    let a = s.post(
        "github",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", vector)],
        b"Hello, World?",
    );
    assert_eq!(a.status, 401, "{}", a.body);

    // a real payload: signed right -> accepted (nothing to do: no issue key); wrong secret,
    // missing signature, SHA-1 only -> 401
    let body = fixture("github/pull_request.opened.json");
    let good = sign("It's a Secret to Everybody", &body);
    let gh = |headers: &[(&str, &str)]| {
        let mut h = vec![
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", "d-1"),
        ];
        h.extend_from_slice(headers);
        s.post("github", &h, &body)
    };
    assert_eq!(gh(&[("X-Hub-Signature-256", &good)]).status, 200);
    let wrong = sign("another secret", &body);
    assert_eq!(gh(&[("X-Hub-Signature-256", &wrong)]).status, 401);
    assert_eq!(gh(&[]).status, 401);
    let sha1 = gh(&[(
        "X-Hub-Signature",
        "sha1=3b3f4a1bd2d7d0b3e8f5b2c5d1e4f3a2b1c0d9e8",
    )]);
    assert_eq!(sha1.status, 401);
    assert!(sha1.body.contains("SHA-1"), "{}", sha1.body);
    let garbage = gh(&[("X-Hub-Signature-256", "sha256=zz")]);
    assert_eq!(garbage.status, 401);

    // Bitbucket: Data Center's unsigned "Test connection" ping -> 200; a bad signature -> 401;
    // a good one -> accepted
    let ping = s.post(
        "bitbucket",
        &[("X-Event-Key", "diagnostics:ping"), ("X-Request-Id", "p-1")],
        b"{\"test\": true}",
    );
    assert_eq!(ping.status, 200, "{}", ping.body);
    let bb = fixture("bitbucket-server/pr-opened.json");
    let bb_headers = |sig: &str| {
        s.post(
            "bitbucket",
            &[
                ("X-Event-Key", "pr:opened"),
                ("X-Request-Id", "bb-1"),
                ("X-Hub-Signature", sig),
            ],
            &bb,
        )
    };
    assert_eq!(bb_headers(&sign("nope", &bb)).status, 401);
    assert_eq!(bb_headers(&sign(BITBUCKET_SECRET, &bb)).status, 200);

    // GitLab is not configured in this service: refused with 403 even with a token
    let gl = s.post(
        "gitlab",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", GITLAB_TOKEN),
        ],
        &fixture("gitlab/push-event.json"),
    );
    assert_eq!(gl.status, 403, "{}", gl.body);
    assert!(gl.body.contains("BENCHCTL_GITLAB_TOKEN"), "{}", gl.body);

    // the Tracker trigger: bearer secret required
    let close = serde_json::to_vec(&json!({"issue": "SRVA-1"})).unwrap();
    assert_eq!(s.post("tracker", &[], &close).status, 401);
    assert_eq!(
        s.post("tracker", &[("Authorization", "Bearer wrong")], &close)
            .status,
        401
    );
    assert_eq!(
        s.post(
            "tracker",
            &[("Authorization", &format!("OAuth {HOOK_SECRET}"))],
            &close
        )
        .status,
        401
    );

    // oversized bodies: 413, declared or streamed
    let big = vec![b' '; 100 * 1024];
    let sig = sign("It's a Secret to Everybody", &big);
    let a = s.post(
        "github",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &sig)],
        &big,
    );
    assert_eq!(a.status, 413, "{}", a.body);

    // unknown source
    assert_eq!(s.post("jenkins", &[], b"{}").status, 404);

    // nothing of the refused deliveries reached the Tracker or the queue
    assert!(t.requests().is_empty(), "{:?}", t.requests());
    assert_eq!(s.queue_files(), 0);
    assert_eq!(s.get("/healthz").status, 200);
    assert_eq!(
        s.metric("benchctl_webhook_requests_total{source=\"github\",outcome=\"unauthenticated\"}"),
        5
    );
    assert_eq!(
        s.metric("benchctl_webhook_requests_total{source=\"gitlab\",outcome=\"not_configured\"}"),
        1
    );
    assert_eq!(
        s.metric("benchctl_webhook_requests_total{source=\"github\",outcome=\"too_large\"}"),
        1
    );
    let log = s.log();
    for secret in [BITBUCKET_SECRET, HOOK_SECRET, "It's a Secret to Everybody"] {
        assert!(!log.contains(secret), "secret in the log:\n{log}");
    }
}

/// A delivery of one platform, with the headers it sends, for an approval or a rejection.
struct Case {
    issue: &'static str,
    source: &'static str,
    event: &'static str,
    body: Vec<u8>,
    want: &'static str,
}

/// A captured payload with `edits` (path, value) applied.
fn case(
    issue: &'static str,
    source: &'static str,
    event: &'static str,
    file: &str,
    edits: &[(&[&str], Value)],
    want: &'static str,
) -> Case {
    let mut v = fixture_json(file);
    for (path, value) in edits {
        set_at(&mut v, path, value.clone());
    }
    Case {
        issue,
        source,
        event,
        body: json_bytes(&v),
        want,
    }
}

fn cases() -> Vec<Case> {
    const REVIEW: &str = "github/pull_request_review.submitted.json";
    const CLOUD: &str = "bitbucket-cloud/bitbucket-cloud-pull-event-created.json";
    const GITLAB: &str = "gitlab/merge-request-event.json";
    const READY: &str = "readyForTest";
    const REWORK: &str = "needsImprovement";
    let gl = |issue: &'static str, action: &str, want| {
        let branch = json!(format!("{issue}-viewport"));
        let edits: [(&[&str], Value); 2] = [
            (&["object_attributes", "action"], json!(action)),
            (&["object_attributes", "source_branch"], branch),
        ];
        case(issue, "gitlab", "Merge Request Hook", GITLAB, &edits, want)
    };
    let dc = |issue: &'static str, file: &str, event, want| {
        let branch = json!(format!("feature/{issue}-wip"));
        let edits: [(&[&str], Value); 1] = [(&["pullRequest", "fromRef", "displayId"], branch)];
        case(issue, "bitbucket-dc", event, file, &edits, want)
    };
    vec![
        // GitHub: approved (key in the branch), changes requested (key in the review body),
        // closed without merge (key in the title)
        case(
            "SRVR-1",
            "github",
            "pull_request_review",
            REVIEW,
            &[
                (&["review", "state"], json!("approved")),
                (
                    &["pull_request", "head", "ref"],
                    json!("feature/SRVR-1-login"),
                ),
            ],
            READY,
        ),
        case(
            "SRVR-2",
            "github",
            "pull_request_review",
            REVIEW,
            &[
                (&["review", "state"], json!("changes_requested")),
                (
                    &["review", "body"],
                    json!("Please rework SRVR-2, the tests fail."),
                ),
            ],
            REWORK,
        ),
        case(
            "SRVR-3",
            "github",
            "pull_request",
            "github/pull_request.closed.json",
            &[(
                &["pull_request", "title"],
                json!("SRVR-3: update the README"),
            )],
            REWORK,
        ),
        // Bitbucket Cloud: approved (key in the description), changes requested (branch)
        case(
            "SRVR-4",
            "bitbucket-cloud",
            "pullrequest:approved",
            CLOUD,
            &[(&["pullrequest", "description"], json!("Implements SRVR-4."))],
            READY,
        ),
        case(
            "SRVR-5",
            "bitbucket-cloud",
            "pullrequest:changes_request_created",
            CLOUD,
            &[(
                &["pullrequest", "source", "branch", "name"],
                json!("bugfix/srvr-5-crash"),
            )],
            REWORK,
        ),
        // Bitbucket Data Center: approved, needs work, declined
        dc(
            "SRVR-6",
            "bitbucket-server/pr-reviewer-approved.json",
            "pr:reviewer:approved",
            READY,
        ),
        dc(
            "SRVR-7",
            "bitbucket-server/pr-reviewer-needs-work.json",
            "pr:reviewer:needs_work",
            REWORK,
        ),
        dc(
            "SRVR-8",
            "bitbucket-server/pr-declined.json",
            "pr:declined",
            REWORK,
        ),
        // GitLab: approved, closed
        gl("SRVR-9", "approved", READY),
        gl("SRVR-10", "close", REWORK),
    ]
}

fn send(s: &Serve, c: &Case, delivery: &str) -> Answer {
    match c.source {
        "github" => s.github(c.event, delivery, &c.body),
        "bitbucket-cloud" => s.post(
            "bitbucket",
            &[
                ("X-Event-Key", c.event),
                ("X-Request-UUID", delivery),
                ("X-Attempt-Number", "1"),
                ("X-Hub-Signature", &sign(BITBUCKET_SECRET, &c.body)),
            ],
            &c.body,
        ),
        "bitbucket-dc" => s.post(
            "bitbucket",
            &[
                ("X-Event-Key", c.event),
                ("X-Request-Id", delivery),
                ("X-Hub-Signature", &sign(BITBUCKET_SECRET, &c.body)),
            ],
            &c.body,
        ),
        "gitlab" => s.post(
            "gitlab",
            &[
                ("X-Gitlab-Event", c.event),
                ("X-Gitlab-Token", GITLAB_TOKEN),
                ("Idempotency-Key", delivery),
            ],
            &c.body,
        ),
        other => unreachable!("{other}"),
    }
}

#[test]
fn review_flow_moves_issues_by_transition_target_on_every_platform() {
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    let cases = cases();
    for c in &cases {
        t.add_issue(c.issue);
    }
    // already in the target status: left alone
    t.add_issue("SRVR-11").set_status("SRVR-11", "readyForTest");
    // a workflow without a way to the target status
    t.add_issue("SRVR-12")
        .set_workflow("SRVR-12", &[("start_progress", "inProgress")]);
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(templates.path().join("tracker")).unwrap();
    std::fs::write(
        templates.path().join("tracker/review-comment.txt"),
        "Review {review} of {issue} ({branch}): to {status}\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .arg("--review-comment")
        .arg("--templates-dir")
        .arg(&templates.path().to_string_lossy())
        .start();

    for (i, c) in cases.iter().enumerate() {
        let a = send(&s, c, &format!("delivery-{i}"));
        assert_eq!(a.status, 202, "{} {}: {}", c.source, c.event, a.body);
        assert_eq!(a.json()["queued"][0]["kind"], "review", "{}", a.body);
    }
    let mut approve = fixture_json("github/pull_request_review.submitted.json");
    set_at(&mut approve, &["review", "state"], json!("APPROVED"));
    for key in ["SRVR-11", "SRVR-12"] {
        set_at(
            &mut approve,
            &["pull_request", "head", "ref"],
            json!(format!("{key}-x")),
        );
        let a = s.github(
            "pull_request_review",
            &format!("delivery-{key}"),
            &json_bytes(&approve),
        );
        assert_eq!(a.status, 202, "{}", a.body);
    }
    // a redelivery (same delivery id) is acknowledged and does nothing
    let again = send(&s, &cases[0], "delivery-0");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["duplicate"], true);
    // the fixture as captured: a review that only comments -> ignored
    let commented = s.github(
        "pull_request_review",
        "delivery-commented",
        &fixture("github/pull_request_review.submitted.json"),
    );
    assert_eq!(commented.status, 200);
    assert!(commented.body.contains("ignored"), "{}", commented.body);

    let total = cases.len() + 2;
    s.wait_until("every review job finished", Duration::from_secs(60), |s| {
        s.finished_jobs("done") + s.finished_jobs("failed") >= total
    });
    for c in &cases {
        assert_eq!(
            t.status(c.issue).as_deref(),
            Some(c.want),
            "{} {} for {}",
            c.source,
            c.event,
            c.issue
        );
    }
    let executed = t.executed();
    // transition ids, not status keys, were executed; one per issue (the duplicate did nothing)
    for c in &cases {
        let id = if c.want == "readyForTest" {
            "send_to_testing"
        } else {
            "return_for_rework"
        };
        let runs: Vec<_> = executed.iter().filter(|(k, _)| k == c.issue).collect();
        assert_eq!(runs.len(), 1, "{}: {executed:?}", c.issue);
        assert_eq!(runs[0].1, id);
    }
    assert!(!executed
        .iter()
        .any(|(k, _)| k == "SRVR-11" || k == "SRVR-12"));
    assert_eq!(t.status("SRVR-12").as_deref(), Some("open"));
    let log = s.log();
    assert!(
        log.contains("no transition of SRVR-12 leads from `open` to `readyForTest`; available: `start_progress` -> `inProgress`"),
        "{log}"
    );
    assert!(
        log.contains("SRVR-11 is already in status `readyForTest`"),
        "{log}"
    );
    assert_eq!(
        s.metric("benchctl_transitions_total{result=\"no_transition\"}"),
        1
    );
    assert_eq!(
        s.metric("benchctl_transitions_total{result=\"ok\"}"),
        cases.len() as u64
    );
    assert_eq!(
        s.metric("benchctl_webhook_requests_total{source=\"github\",outcome=\"duplicate\"}"),
        1
    );
    // the comment came from the user's template
    let comments = t.comments();
    assert!(
        comments.contains(&(
            "SRVR-1".to_string(),
            "Review approved of SRVR-1 (feature/SRVR-1-login): to readyForTest".to_string()
        )),
        "{comments:?}"
    );
    // a failed job is not retried forever: it left the queue
    assert_eq!(s.queue_files(), 0);
    assert!(!log.contains(TOKEN), "token in the log");
}

#[test]
fn review_targets_are_configurable_per_event() {
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    t.add_issue("SRVT-1").add_issue("SRVT-2");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .arg("--on-approved")
        .arg("inProgress")
        .arg("--on-changes-requested")
        .arg("none")
        .start();
    let review = |key: &str, state: &str| {
        let mut v = fixture_json("github/pull_request_review.submitted.json");
        set_at(&mut v, &["review", "state"], json!(state));
        set_at(
            &mut v,
            &["pull_request", "head", "ref"],
            json!(format!("feature/{key}")),
        );
        json_bytes(&v)
    };
    assert_eq!(
        s.github("pull_request_review", "t-1", &review("SRVT-1", "approved"))
            .status,
        202
    );
    assert_eq!(
        s.github(
            "pull_request_review",
            "t-2",
            &review("SRVT-2", "changes_requested")
        )
        .status,
        202
    );
    s.wait_until("both jobs finished", Duration::from_secs(30), |s| {
        s.finished_jobs("done") == 2
    });
    assert_eq!(t.status("SRVT-1").as_deref(), Some("inProgress"));
    assert_eq!(
        t.executed(),
        vec![("SRVT-1".to_string(), "start_progress".to_string())]
    );
    assert_eq!(t.status("SRVT-2").as_deref(), Some("open"));
    assert!(s
        .log()
        .contains("no status is configured for a pull request changes_requested"));
}
