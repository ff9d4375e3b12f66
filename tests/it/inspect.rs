//! `status`, `logs` and `link` of a running bench, found by its labels.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use serde_json::Value;

const TOKEN: &str = "link-canary-31415926";

#[test]
fn status_logs_and_link_after_a_failed_link() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["INS-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/INS-1", "inspect\n");
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo log-line-one; echo log-line-two; exec /bin/busybox httpd -f -p 8080 -h /www\"]\n",
    );
    let commit = repo.commit("logs");
    let tracker = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    tracker.add_issue("INS-1");
    let with_tracker = |cmd: &mut std::process::Command| {
        cmd.tracker(&tracker, TOKEN, "org-1");
    };

    // The Tracker refuses once (403, not retried): exit 3, bench up, field unset.
    tracker.fail_next_method("PATCH", 403);
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/INS-1",
        "--repo",
        &repo.path_str(),
        "--json",
    ]);
    with_tracker(&mut cmd);
    let r = run(&mut cmd);
    assert_eq!(r.code, 3, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(tracker.field("INS-1", "benchLink"), None);

    // status
    let r = run(benchctl().args(["status", "ins-1", "--json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let s = r.json();
    assert_eq!(s["bench"]["state"], "running");
    assert_eq!(s["bench"]["commit"], commit.as_str());
    assert_eq!(s["bench"]["url"], url.as_str());
    assert_eq!(s["last_deploy"]["result"], "not-linked");
    assert!(
        s["last_deploy"]["message"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{s}"
    );
    let r = run(benchctl().args(["status", "INS-1"]));
    assert!(
        r.stdout.contains("state:    running") && r.stdout.contains(&url),
        "{}",
        r.stdout
    );

    let r = run(benchctl().args(["status", "INS-1"]));
    assert!(r.stdout.contains("last deploy: not-linked"), "{}", r.stdout);

    // logs
    let r = run(benchctl().args(["logs", "INS-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains("log-line-one\nlog-line-two"),
        "{}",
        r.stdout
    );
    let r = run(benchctl().args(["logs", "INS-1", "--tail", "1"]));
    assert_eq!(r.stdout.trim(), "log-line-two", "{}", r.all());

    // a failed redeploy: the bench stays, status tells why the last deploy failed
    repo.write("Dockerfile", "FROM scratch\nCOPY nothing-here /x\n");
    repo.commit("broken");
    let r = run(benchctl().args([
        "deploy",
        "feature/INS-1",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());
    let s = run(benchctl().args(["status", "INS-1", "--json"])).json();
    assert_eq!(s["bench"]["commit"], commit.as_str());
    assert_eq!(s["last_deploy"]["result"], "failed");
    assert!(
        s["last_deploy"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing-here"),
        "{s}"
    );

    // logs --follow keeps streaming (stopped here once it showed the last line)
    let mut child = benchctl()
        .args(["logs", "INS-1", "--follow", "--tail", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("logs --follow printed nothing");
    assert_eq!(first, "log-line-two");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--follow stopped on its own"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // link: the way out after exit code 3
    let mut cmd = benchctl();
    cmd.args(["link", "INS-1"]);
    with_tracker(&mut cmd);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        tracker.field("INS-1", "benchLink"),
        Some(Value::from(url.as_str()))
    );
    assert!(!r.all().contains(TOKEN));

    // after teardown: status says absent, link has nothing to link
    run(benchctl().args(["teardown", "INS-1", "--keep-link"]));
    let r = run(benchctl().args(["status", "INS-1"]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("INS-1 has no bench"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("last deploy"),
        "teardown forgets the result: {}",
        r.stdout
    );
    let mut cmd = benchctl();
    cmd.args(["link", "INS-1"]);
    with_tracker(&mut cmd);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no running bench"), "{}", r.stderr);
}
