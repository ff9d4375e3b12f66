//! Issue 29, low items at serve's doors: the page Traefik shows for a sleeping bench links
//! back only to the host asked for, and a URL whose user information names that host
//! (`http://HOST:1@evil.example/`) is no link back.

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
