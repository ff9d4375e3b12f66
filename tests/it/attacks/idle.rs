//! Issue 29, medium 7: only inbound use keeps a bench awake. A bench that talks to the world
//! on its own (a connection out every half second) is idle all the same and sleeps; a bench
//! whose published port is visited (not through the front door) stays awake while it is, then
//! sleeps. Before, any byte on a bench's network counters counted, so the chatty bench never
//! slept, never expired and was never chosen by the cap.

use crate::support::serve::*;
use crate::support::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// busybox httpd (in the background) and a connection out to TEST-NET-1 every half second.
const CHATTY: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
STOPSIGNAL SIGKILL\n\
CMD [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox httpd -p 8080 -h /www; while true; do \
/bin/busybox nc -w 1 192.0.2.1 9 </dev/null; /bin/busybox sleep 0.5; done\"]\n";

fn visit(url: &str) {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    if let Ok(mut s) = std::net::TcpStream::connect(addr) {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n");
        let _ = s.read_to_end(&mut Vec::new());
    }
}

#[test]
fn a_bench_talking_on_its_own_sleeps_and_a_visited_one_stays_awake() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKS-1", "ATKS-2"]);
    let repo = AppRepo::new();
    // stopped at once (busybox as process 1 ignores SIGTERM: the engine would wait 10 s)
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace("EXPOSE", "STOPSIGNAL SIGKILL\nEXPOSE"),
    );
    repo.commit("stops at once");
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKS-1"]);
    repo.write("Dockerfile", CHATTY);
    repo.commit("talks to the world");
    git(
        repo.path(),
        &["checkout", "-q", "-b", "feature/ATKS-2", "main"],
    );
    for branch in ["feature/ATKS-1", "feature/ATKS-2"] {
        let r = run(benchctl().args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let visited = listed("ATKS-2")["url"].as_str().unwrap().to_string();
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .args(&["--gc-interval", "0"])
        .args(&["--sleep-after", "3s", "--sleep-sample", "1s"])
        .start();
    // ATKS-2 is visited twice a second for 12 s: it stays awake, while the chatty one sleeps
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        visit(&visited);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        s.log().contains("[ATKS-1] unused for"),
        "a bench's own outward traffic kept it awake\n{}",
        s.log()
    );
    assert!(
        !s.log().contains("[ATKS-2] unused for") && bench_state("ATKS-2") == "running",
        "visits to the published port count as use\n{}",
        s.log()
    );
    s.wait_until("ATKS-1 sleeps", Duration::from_secs(20), |_| {
        bench_state("ATKS-1") == "exited"
    });
    s.wait_until(
        "ATKS-2 sleeps once nobody visits",
        Duration::from_secs(20),
        |_| bench_state("ATKS-2") == "exited",
    );
}
