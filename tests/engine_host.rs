//! A remote engine through `DOCKER_HOST=tcp://...` (the local engine's socket behind a TCP
//! relay on loopback): deploy, list and teardown work over it, and the bench's address uses
//! the engine's host by default.

mod support;

use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use support::*;

/// Relays TCP connections on 127.0.0.1 to the engine's unix socket; returns the port.
fn tcp_relay_to_engine() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let Ok(unix) = UnixStream::connect("/var/run/docker.sock") else {
                continue;
            };
            let (mut t1, mut u1) = (tcp.try_clone().unwrap(), unix.try_clone().unwrap());
            let (mut t2, mut u2) = (tcp, unix);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut t1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut u2, &mut t2);
                let _ = t2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    port
}

#[test]
fn a_tcp_docker_host_is_used_and_names_the_bench_host() {
    require_docker();
    let _c = Cleanup::issues(&["ENG-1"]);
    let port = tcp_relay_to_engine();
    let host = format!("tcp://127.0.0.1:{port}");
    let repo = AppRepo::new();
    repo.branch_with("feature/ENG-1", "over tcp\n");
    let with_host = |args: &[&str]| {
        let mut cmd = benchctl();
        cmd.args(args)
            .env("DOCKER_HOST", &host)
            .env_remove("BENCHCTL_PUBLIC_HOST")
            .env_remove("DOCKER_TLS_VERIFY");
        run(&mut cmd)
    };
    let r = with_host(&[
        "--json",
        "deploy",
        "feature/ENG-1",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "the engine's host names the bench: {url}"
    );
    assert_eq!(http_get(&url).as_deref(), Some("over tcp\n"));
    let r = with_host(&["config"]);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("public-host"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("127.0.0.1") && line.contains("DOCKER_HOST"),
        "{line}"
    );
    let r = with_host(&["--json", "list"]);
    assert!(r.stdout.contains("ENG-1"), "{}", r.all());
    let r = with_host(&["teardown", "ENG-1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(issue_containers("ENG-1").is_empty());

    // an engine that cannot be reached, and a DOCKER_HOST that cannot be read
    let mut cmd = benchctl();
    cmd.args(["list"]).env("DOCKER_HOST", "tcp://127.0.0.1:9");
    let r = run(&mut cmd);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("DOCKER_HOST=tcp://127.0.0.1:9"),
        "{}",
        r.stderr
    );
    let mut cmd = benchctl();
    cmd.args(["list"]).env("DOCKER_HOST", "ftp://engine");
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("DOCKER_HOST `ftp://engine`"),
        "{}",
        r.stderr
    );
}
