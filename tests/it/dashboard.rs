//! The bench dashboard of `serve --dashboard`: it needs credentials (or a loopback listener of
//! its own), lists every bench with its last deploy and the failing one's error, escapes a
//! hostile branch name and log line, and a real browser (headless Chromium) shows it.

use crate::support::serve::*;
use crate::support::*;

const PASSWORD: &str = "dashboard-canary-pass-6b1e";

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Headless Chromium's DOM of `url` after it loaded (or its screenshot to `shot`).
fn chromium(url: &str, shot: Option<&std::path::Path>) -> String {
    let mut cmd = std::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,700",
    ]);
    match shot {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(url)
        .output()
        .expect("chromium is needed for this test (apt-get install chromium)");
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_dashboard_shows_benches_and_errors_to_those_it_lets_in() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["DSH-1", "DSH-2"]);
    let repo = AppRepo::new();
    // a bench whose branch name and first log line are markup
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD \
         [\"/bin/busybox\", \"sh\", \"-c\", \"echo '<script>alert(1)</script> started'; exec \
         /bin/busybox httpd -f -p 8080 -h /www\"]\n",
    );
    let hostile = "feature/DSH-1-<script>x</script>";
    repo.branch_with(hostile, "one\n");
    for again in [false, true] {
        // deployed twice: its page lists the earlier deploy
        let mut cmd = benchctl();
        cmd.args(["deploy", hostile, "--repo", &repo.path_str(), "--no-link"]);
        if again {
            cmd.arg("--force");
        }
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    // a deploy that fails: no bench, its error on the page
    repo.write("Dockerfile", "FROM scratch\nCOPY dsh-missing-file /x\n");
    let failing = repo.branch_with("feature/DSH-2", "two\n");
    let r = run(benchctl().args([
        "deploy",
        "feature/DSH-2",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 1, "{}", r.all());

    // without credentials nor loopback listener: refused at start
    let state = tempfile::tempdir().unwrap();
    let r = run(benchctl()
        .args(["serve", "--dashboard", "--state-dir"])
        .arg(state.path()));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("BENCHCTL_DASHBOARD_PASSWORD"),
        "{}",
        r.all()
    );

    let own = free_port();
    // the Tracker gives the issues' summaries
    let t = serve_tracker();
    t.add_issue("DSH-1").add_issue("DSH-2");
    let s = ServeSetup::new(Some(&t), state.path())
        .args(&[
            "--dashboard",
            "--dashboard-listen",
            &format!("127.0.0.1:{own}"),
        ])
        .env("BENCHCTL_DASHBOARD_PASSWORD", PASSWORD)
        .start();
    // serve's listener: Basic auth
    let a = http(&s.addr, "GET", "/", &[], b"");
    assert_eq!(a.status, 401, "{}", a.body);
    let wrong = basic("benchctl", "nope");
    let a = http(&s.addr, "GET", "/", &[("Authorization", &wrong)], b"");
    assert_eq!(a.status, 401, "{}", a.body);
    let right = basic("benchctl", PASSWORD);
    let a = http(&s.addr, "GET", "/", &[("Authorization", &right)], b"");
    assert_eq!(a.status, 200, "{}", a.body);
    let page = a.body;
    assert!(page.contains("DSH-1") && page.contains("DSH-2"), "{page}");
    assert!(page.contains("Issue DSH-1"), "the summary: {page}");
    assert!(
        page.contains("dsh-missing-file"),
        "the failing one's error: {page}"
    );
    // and the commit it failed at
    assert!(page.contains(&failing[..12]), "{page}");
    assert!(!page.contains("<script>x"), "{page}");
    assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"), "{page}");
    // one bench's page: its last output, escaped
    let a = http(
        &s.addr,
        "GET",
        "/bench/DSH-1",
        &[("Authorization", &right)],
        b"",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; started"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("<script>alert"), "{}", a.body);
    assert!(a.body.contains("Earlier deploys"), "{}", a.body);
    assert!(!s.log().contains(PASSWORD));

    // a real browser on the loopback listener: it loads and shows the benches and the error
    let url = format!("http://127.0.0.1:{own}/");
    let dom = chromium(&url, None);
    assert!(dom.contains("DSH-1") && dom.contains("DSH-2"), "{dom}");
    assert!(dom.contains("dsh-missing-file"), "{dom}");
    assert!(
        !dom.contains("<script>alert") && !dom.contains("<script>x"),
        "{dom}"
    );
    // BENCHCTL_TEST_SCREENSHOT=examples/dashboard.png refreshes the README's screenshot
    if let Ok(p) = std::env::var("BENCHCTL_TEST_SCREENSHOT") {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
        chromium(&url, Some(&p));
        assert!(p.exists());
    }
}
