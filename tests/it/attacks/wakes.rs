//! Issue 29, medium 8: a loop over guessable hosts wakes only so many benches. Three sleeping
//! benches under a cap of 2, and a client sending about 200 requests a second over their hosts
//! and made-up ones for 15 s and more: the front door wakes at most `--wake-rate-client` benches for it
//! (then 429 with `Retry-After`), so the cap does not churn, and a deploy meanwhile gets its
//! lock and its bench. Before, every request for a sleeping bench woke it, each wake stopping
//! the bench the next request woke.

use crate::support::serve::*;
use crate::support::*;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ISSUES: [&str; 4] = ["ATKW-1", "ATKW-2", "ATKW-3", "ATKW-5"];

fn deploy(repo: &AppRepo, branch: &str) -> Run {
    run(benchctl()
        .args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"])
        .args([
            "--url-template",
            "http://{issue}.bench.test",
            "--max-running",
            "2",
        ]))
}

fn wakes(s: &Serve) -> u64 {
    s.get("/metrics")
        .body
        .lines()
        .filter(|l| l.starts_with("benchctl_wakes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_flood_over_guessable_hosts_wakes_few_benches_and_deploys_go_on() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&ISSUES);
    let repo = AppRepo::new();
    // stopped at once (busybox as process 1 ignores SIGTERM: the engine would wait 10 s)
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace("EXPOSE", "STOPSIGNAL SIGKILL\nEXPOSE"),
    );
    repo.commit("stops at once");
    for issue in &ISSUES[..3] {
        let branch = format!("feature/{issue}");
        git(repo.path(), &["checkout", "-q", "-b", &branch, "main"]);
        let r = deploy(&repo, &branch);
        assert_eq!(r.code, 0, "{}", r.all());
        let r = run(benchctl().args(["sleep", issue]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    git(
        repo.path(),
        &["checkout", "-q", "-b", "feature/ATKW-5", "main"],
    );
    let state = tempfile::tempdir().unwrap();
    let proxy = format!("127.0.0.1:{}", free_port());
    let s = ServeSetup::new(None, state.path())
        .front_door(&proxy)
        .args(&["--max-running", "2", "--wake-hold", "1"])
        .args(&["--wake-rate-client", "3"])
        .start();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..4)
        .map(|t| {
            let (stop, sent, limited, proxy) =
                (stop.clone(), sent.clone(), limited.clone(), proxy.clone());
            std::thread::spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::SeqCst) {
                    n += 4;
                    let host = format!("atkw-{}.bench.test", n % 12 + 1);
                    if let Ok(mut c) = std::net::TcpStream::connect(&proxy) {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
                        let _ = write!(
                            c,
                            "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                        );
                        let mut out = String::new();
                        let _ = c.read_to_string(&mut out);
                        if out.starts_with("HTTP/1.1 429") {
                            assert!(out.to_ascii_lowercase().contains("retry-after:"), "{out}");
                            limited.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(5));
    // a deploy under the flood gets the cap's lock and its bench
    let r = deploy(&repo, "feature/ATKW-5");
    assert_eq!(r.code, 0, "{}\n{}", r.all(), s.log());
    assert_eq!(bench_state("ATKW-5"), "running");
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    for f in flood {
        f.join().unwrap();
    }
    let (sent, limited, woken) = (
        sent.load(Ordering::SeqCst),
        limited.load(Ordering::SeqCst),
        wakes(&s),
    );
    assert!(sent > 500, "the flood sent only {sent} requests");
    // three a minute for this client, and one more earned during the flood at most
    assert!(
        woken <= 4,
        "{woken} wakes for one client in {sent} requests\n{}",
        s.log()
    );
    assert!(limited > 0, "no request was refused a wake");
    assert_eq!(s.metric("benchctl_wakes_refused_total{}") as usize, limited);
}
