//! serve's queue over real processes: accepted deliveries are on disk before the answer, jobs
//! survive a crash and a restart, and a shutdown lets running jobs finish.

use crate::support::serve::*;
use serde_json::json;
use std::time::Duration;

#[test]
fn queued_jobs_survive_a_crash_and_a_restart_and_shutdown_finishes_running_jobs() {
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    for k in ["SRVQ-1", "SRVQ-2", "SRVQ-3", "SRVQ-4", "SRVQ-5"] {
        t.add_issue(k);
    }
    let state = tempfile::tempdir().unwrap();
    let approval = |key: &str| {
        let mut v = fixture_json("github/pull_request_review.submitted.json");
        set_at(&mut v, &["review", "state"], json!("approved"));
        set_at(
            &mut v,
            &["pull_request", "head", "ref"],
            json!(format!("feature/{key}")),
        );
        json_bytes(&v)
    };
    // one job at a time, and the Tracker takes 30 s to answer the first request: the service
    // is killed while the first job waits and the others are queued
    t.slow_next(Duration::from_secs(30));
    let mut s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .arg("--max-parallel")
        .arg("1")
        .env("BENCHCTL_TRACKER_RETRY_SECS", "60")
        .start();
    for key in ["SRVQ-1", "SRVQ-2", "SRVQ-3"] {
        let a = s.github("pull_request_review", &format!("q-{key}"), &approval(key));
        assert_eq!(a.status, 202, "{}", a.body);
    }
    s.wait_until(
        "the first job asked the Tracker",
        Duration::from_secs(10),
        |_| !t.requests().is_empty(),
    );
    assert_eq!(s.queue_files(), 3, "every accepted delivery is on disk");
    s.kill();
    assert!(t.executed().is_empty());

    // restarted: the job that was running and the queued ones all run; a redelivery of an
    // accepted delivery is still recognised
    let mut s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .arg("--max-parallel")
        .arg("1")
        .start();
    let dup = s.github("pull_request_review", "q-SRVQ-2", &approval("SRVQ-2"));
    assert_eq!(dup.status, 200, "{}", dup.body);
    s.wait_until("the three jobs ran", Duration::from_secs(30), |_| {
        t.executed().len() == 3
    });
    for key in ["SRVQ-1", "SRVQ-2", "SRVQ-3"] {
        assert_eq!(t.status(key).as_deref(), Some("readyForTest"), "{key}");
    }
    assert!(
        s.log()
            .contains("3 job(s) left by the last run are queued again"),
        "{}",
        s.log()
    );
    s.wait_until("the queue is empty", Duration::from_secs(10), |s| {
        s.queue_files() == 0
    });

    // SIGTERM while a job runs: the service stops accepting, lets the job finish, exits 0
    t.slow_next(Duration::from_secs(3));
    let a = s.github("pull_request_review", "q-SRVQ-4", &approval("SRVQ-4"));
    assert_eq!(a.status, 202);
    s.wait_until("the job asked the Tracker", Duration::from_secs(10), |_| {
        t.requests_for("SRVQ-4").len() == 1
    });
    let status = s.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(t.status("SRVQ-4").as_deref(), Some("readyForTest"));
    assert!(std::net::TcpStream::connect(&s.addr).is_err());
    let log = s.log();
    assert!(
        log.contains("SIGTERM: no longer accepting deliveries"),
        "{log}"
    );
    assert!(log.contains("stopped"), "{log}");
    assert_eq!(s.queue_files(), 0);

    // SIGTERM with a job that outlasts --shutdown-grace: abandoned, kept on disk, run on the
    // next start
    let mut s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .arg("--shutdown-grace")
        .arg("1")
        .env("BENCHCTL_TRACKER_RETRY_SECS", "60")
        .start();
    t.slow_next(Duration::from_secs(30));
    let a = s.github("pull_request_review", "q-SRVQ-5", &approval("SRVQ-5"));
    assert_eq!(a.status, 202);
    s.wait_until("the job asked the Tracker", Duration::from_secs(10), |_| {
        t.requests_for("SRVQ-5").len() == 1
    });
    let status = s.terminate();
    assert!(status.success(), "{status}");
    assert!(
        s.log().contains("abandoned: stopped for shutdown"),
        "{}",
        s.log()
    );
    assert_eq!(s.queue_files(), 1);
    assert_eq!(t.status("SRVQ-5").as_deref(), Some("open"));
    let s = ServeSetup::new(Some(&t), state.path())
        .review_fixture_repos()
        .start();
    s.wait_until("the abandoned job ran", Duration::from_secs(30), |_| {
        t.status("SRVQ-5").as_deref() == Some("readyForTest")
    });
}
