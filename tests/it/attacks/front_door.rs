//! Issue 29, low items at serve's doors: the page Traefik shows for a sleeping bench links
//! back only to the host asked for, and a URL whose user information names that host
//! (`http://HOST:1@evil.example/`) is no link back (16); the front door is the edge, so
//! the address a visitor claims (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`) never reaches
//! the bench: it sees the connection's (13).

use crate::support::serve::*;
use crate::support::*;
use std::io::{Read, Write};

/// A raw GET of `path` at `addr` with `Host: host`; the whole answer.
fn get_host(addr: &str, host: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn the_asleep_page_links_back_to_no_other_site() {
    let _group = crate::support::group(module_path!());
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path()).start();
    let host = "atkd-16.bench.test";
    // the control: a link back to the host asked for is given
    let page = get_host(&s.addr, host, &format!("/asleep?url=http://{host}/x"));
    assert!(
        page.contains(&format!("href=\"http://{host}/x\"")),
        "{page}"
    );
    for url in [
        format!("http://{host}:1@evil.example/"),
        format!("http://{host}@evil.example/"),
        "http://evil.example/".to_string(),
    ] {
        let page = get_host(&s.addr, host, &format!("/asleep?url={url}"));
        assert!(page.starts_with("HTTP/1.1 404"), "{page}");
        assert!(!page.contains("evil.example"), "{url}: {page}");
    }
}

/// A CGI script of busybox's httpd printing its environment (every request header, as
/// `HTTP_*`).
const ENV_CGI: &str =
    "#!/bin/busybox sh\necho \"Content-Type: text/plain\"\necho\n/bin/busybox env\n";

#[test]
fn the_front_door_says_where_a_visitor_comes_from_and_the_visitor_does_not() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKE-13"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKE-13"]);
    repo.write("www/cgi-bin/env", ENV_CGI);
    let script = repo.path().join("www/cgi-bin/env");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.commit("a page that shows its request headers");
    let r = run(benchctl()
        .args(["deploy", "feature/ATKE-13", "--repo", &repo.path_str()])
        .args(["--no-link", "--url-template", "http://{issue}.bench.test"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let state = tempfile::tempdir().unwrap();
    let proxy = format!("127.0.0.1:{}", free_port());
    let s = ServeSetup::new(None, state.path())
        .front_door(&proxy)
        .start();
    let ask = || {
        let mut c = std::net::TcpStream::connect(&proxy).ok()?;
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .ok()?;
        write!(
            c,
            "GET /cgi-bin/env HTTP/1.1\r\nHost: atke-13.bench.test\r\nConnection: close\r\n\
             X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\n\
             X-Forwarded-Host: evil.example\r\n\r\n"
        )
        .ok()?;
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out.contains("HTTP_HOST").then_some(out)
    };
    s.wait_until(
        "the proxy routes to ATKE-13",
        std::time::Duration::from_secs(30),
        |_| ask().is_some(),
    );
    let seen = ask().unwrap();
    let var = |name: &str| {
        seen.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        !seen.contains("6.6.6.6"),
        "the visitor's claim reached the bench: {seen}"
    );
    assert!(!seen.contains("evil.example"), "{seen}");
    assert_eq!(var("HTTP_X_FORWARDED_FOR"), "127.0.0.1", "{seen}");
    assert_eq!(var("HTTP_X_REAL_IP"), "127.0.0.1", "{seen}");
    assert_eq!(
        var("HTTP_FORWARDED"),
        "for=127.0.0.1;host=\"atke-13.bench.test\";proto=http",
        "{seen}"
    );
}

/// Issue 29, low 12: a front door whose URL template gives every bench one host would route by
/// a map's order; serve refuses to start with it, naming the template.
#[test]
fn a_front_door_whose_benches_share_a_host_does_not_start() {
    let _group = crate::support::group(module_path!());
    for template in ["http://bench.test/{issue}", "http://shared.bench.test"] {
        let proxy = format!("127.0.0.1:{}", free_port());
        let (code, err) = serve_exit(
            &[("BENCHCTL_GITHUB_SECRET", "a-long-enough-webhook-secret-1")],
            &["--proxy-listen", &proxy, "--url-template", template],
        );
        assert_eq!(code, 2, "{template}: {err}");
        assert!(err.contains("{issue}") && err.contains(template), "{err}");
    }
}

/// Issue 29, low 14 and 17: the dashboard's password has 16 bytes at least; guessing it costs
/// a growing wait per client (429 with `Retry-After`); the loopback listener answers no
/// request for another host (DNS rebinding).
#[test]
fn the_dashboard_password_is_long_guessing_waits_and_rebinding_is_refused() {
    let _group = crate::support::group(module_path!());
    let (code, err) = serve_exit(
        &[
            ("BENCHCTL_DASHBOARD_PASSWORD", "short-pass"),
            ("BENCHCTL_GITHUB_SECRET", "a-long-enough-webhook-secret-1"),
        ],
        &["--dashboard"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 16"), "{err}");
    let state = tempfile::tempdir().unwrap();

    let own = free_port();
    let s = ServeSetup::new(None, state.path())
        .args(&[
            "--dashboard",
            "--dashboard-listen",
            &format!("127.0.0.1:{own}"),
        ])
        .env(
            "BENCHCTL_DASHBOARD_PASSWORD",
            "a-dashboard-password-long-enough",
        )
        .start();
    // wrong guesses: after the free ones, the client waits
    let mut codes = Vec::new();
    for i in 0..8 {
        let a = http(
            &s.addr,
            "GET",
            "/",
            &[("Authorization", &format!("Basic {}", basic_wrong(i)))],
            b"",
        );
        codes.push(a.status);
    }
    assert_eq!(&codes[..5], &[401; 5], "{codes:?}");
    assert!(codes[5..].iter().all(|c| *c == 429), "{codes:?}");
    // the loopback listener: its own host answers, another host's name does not
    let page = get_host(
        &format!("127.0.0.1:{own}"),
        &format!("127.0.0.1:{own}"),
        "/",
    );
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let page = get_host(&format!("127.0.0.1:{own}"), "rebound.evil.example", "/");
    assert!(page.starts_with("HTTP/1.1 421"), "{page}");
}

/// Basic credentials for `benchctl` with a wrong password.
fn basic_wrong(i: usize) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("benchctl:wrong-guess-{i}"))
}
