//! The Tracker client against the fake Tracker: retries of 429/5xx/slow answers and connection
//! errors (bounded), no retries of 4xx refusals, and messages that name issue, field and the
//! Tracker's errorMessages without the token.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use benchctl::secret::Secret;
use benchctl::tracker::{RetryPolicy, TrackerClient};
use benchctl::tracker::{TrackerAuth, TrackerConfig, TrackerOrg};
use std::time::{Duration, Instant};

const TOKEN: &str = "tracker-canary-55aa77bb";

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_tries: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_total: Duration::from_secs(10),
        request_timeout: Duration::from_millis(500),
    }
}

fn client(url: &str, policy: RetryPolicy) -> TrackerClient {
    TrackerClient::with_retry(
        TrackerConfig {
            base_url: url.to_string(),
            auth: TrackerAuth::OAuth(Secret::new(TOKEN)),
            org: TrackerOrg::Org("org-1".into()),
        },
        policy,
    )
}

fn fake() -> FakeTracker {
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue("TRK-1");
    t
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let _group = crate::support::group(module_path!());
    let t = fake();
    t.fail_next(429, None)
        .fail_next(503, None)
        .fail_next(500, None)
        .slow_next(Duration::from_secs(2));
    let c = client(&t.url, fast());
    c.set_field("TRK-1", "benchLink", Some("http://h:1/"))
        .await
        .unwrap();
    assert_eq!(t.field("TRK-1", "benchLink"), Some("http://h:1/".into()));
    // 429, 503, 500, the slow one (timed out), then the successful one
    assert_eq!(t.requests_for("TRK-1").len(), 5);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let _group = crate::support::group(module_path!());
    let t = fake();
    t.fail_next(429, Some("1"));
    let c = client(&t.url, fast());
    let started = Instant::now();
    c.get_issue("TRK-1").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After: 1 was not waited for"
    );
    assert_eq!(t.requests_for("TRK-1").len(), 2);
}

#[tokio::test]
async fn retries_are_bounded() {
    let _group = crate::support::group(module_path!());
    let t = fake();
    for _ in 0..10 {
        t.fail_next(503, None);
    }
    let mut policy = fast();
    policy.max_tries = 3;
    let c = client(&t.url, policy);
    let err = c
        .set_field("TRK-1", "benchLink", Some("http://h:1/"))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(503));
    assert_eq!(t.requests_for("TRK-1").len(), 3);
    assert!(err.to_string().contains("retries were exhausted"), "{err}");

    // a Retry-After beyond the total budget is not waited for
    let t = fake();
    t.fail_next(429, Some("3600"));
    let c = client(&t.url, fast());
    let started = Instant::now();
    let err = c.get_issue("TRK-1").await.unwrap_err();
    assert_eq!(err.status, Some(429));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn refusals_are_not_retried_and_are_explained() {
    let _group = crate::support::group(module_path!());
    let t = fake();
    let c = client(&t.url, fast());
    // 422: unknown field
    let err = c
        .set_field("TRK-1", "noSuchField", Some("http://h:1/"))
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(422));
    let msg = err.to_string();
    assert!(
        msg.contains("TRK-1")
            && msg.contains("noSuchField")
            && msg.contains("Field does not exist."),
        "{msg}"
    );
    // 404: unknown issue
    let err = c.get_issue("TRK-404").await.unwrap_err();
    assert_eq!(err.status, Some(404));
    assert!(err.to_string().contains("Issue does not exist."), "{err}");
    // 401: wrong token, named without the token
    let wrong = TrackerClient::with_retry(
        TrackerConfig {
            base_url: t.url.clone(),
            auth: TrackerAuth::OAuth(Secret::new("wrong-canary-token-123")),
            org: TrackerOrg::Org("org-1".into()),
        },
        fast(),
    );
    let err = wrong.get_issue("TRK-1").await.unwrap_err();
    assert_eq!(err.status, Some(401));
    assert!(!err.to_string().contains("wrong-canary-token-123"));
    assert!(!format!("{err:?}").contains(TOKEN));
    // each refusal was asked once
    assert_eq!(t.requests_for("TRK-1").len(), 2);
    assert_eq!(t.requests_for("TRK-404").len(), 1);
}

#[tokio::test]
async fn unreachable_tracker_is_retried_then_named() {
    let _group = crate::support::group(module_path!());
    let port = crate::support::free_port();
    let c = client(&format!("http://127.0.0.1:{port}"), fast());
    let err = c.get_issue("TRK-1").await.unwrap_err();
    assert_eq!(err.status, None);
    let msg = err.to_string();
    assert!(
        msg.contains("could not be reached") && msg.contains("BENCHCTL_TRACKER_URL"),
        "{msg}"
    );
}

#[tokio::test]
async fn edit_conflicts_reread_the_issue_and_try_again() {
    let _group = crate::support::group(module_path!());
    let t = fake();
    let c = client(&t.url, fast());
    for (n, code) in [409u16, 412].into_iter().enumerate() {
        t.fail_next(code, None);
        let value = format!("http://h:{n}/");
        c.set_field("TRK-1", "benchLink", Some(&value))
            .await
            .unwrap();
        assert_eq!(t.field("TRK-1", "benchLink"), Some(value.into()));
    }
    let methods: Vec<String> = t
        .requests_for("TRK-1")
        .into_iter()
        .map(|r| r.method)
        .collect();
    // each time: PATCH (conflict), re-read, PATCH (200)
    assert_eq!(
        methods,
        vec!["PATCH", "GET", "PATCH", "PATCH", "GET", "PATCH"]
    );
}
