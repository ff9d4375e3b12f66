//! Redeploys seen through serve's front door (`--proxy-listen`): GET requests sent all along
//! are all answered — by the old version until the new one answers, then by the new one. None
//! is dropped with the removed container (it is sent again) or sent to a bench that is only
//! being replaced (the new container is routed to before it is renamed into place).

use crate::support::serve::*;
use crate::support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn redeploys_behind_the_proxy_drop_no_request() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["PRX-1"]);
    let repo = AppRepo::new();
    let deploy = |content: &str| {
        repo.branch_with("feature/PRX-1", content);
        let r = run(benchctl()
            .args(["deploy", "feature/PRX-1", "--repo", &repo.path_str()])
            .args(["--no-link", "--url-template", "http://{issue}.bench.test"]));
        assert_eq!(r.code, 0, "{}", r.all());
    };
    deploy("v1\n");
    let state = tempfile::tempdir().unwrap();
    let proxy = format!("127.0.0.1:{}", free_port());
    let s = ServeSetup::new(None, state.path())
        .front_door(&proxy)
        .start();
    let host = "prx-1.bench.test";
    s.wait_until("the proxy routes to PRX-1", Duration::from_secs(30), |_| {
        std::net::TcpStream::connect(&proxy).is_ok() && get_via(&proxy, host, "*/*").2 == "v1\n"
    });

    // a client asking all along, one request at a time
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (stop, proxy) = (stop.clone(), proxy.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let t = std::time::Instant::now();
                let (code, _, body) = get_via(&proxy, host, "*/*");
                answers.push((code, body, t.elapsed().as_millis()));
                std::thread::sleep(Duration::from_millis(20));
            }
            answers
        })
    };
    for v in ["v2\n", "v3\n", "v4\n"] {
        deploy(v);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let answers = client.join().unwrap();
    let failed: Vec<_> = answers.iter().filter(|(code, ..)| *code != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}\n{}",
        failed.len(),
        answers.len(),
        s.log()
    );
    // every version answered in turn, never an older one after a newer one
    let versions: Vec<&str> = answers.iter().map(|(_, b, _)| b.trim()).collect();
    let mut seen: Vec<&str> = versions.clone();
    seen.dedup();
    assert_eq!(seen, ["v1", "v2", "v3", "v4"], "{answers:?}\n{}", s.log());
}
