//! A remote engine through `DOCKER_HOST=tcp://...` (the local engine's socket behind a TCP
//! relay on loopback): deploy, list and teardown work over it, and the bench's address uses
//! the engine's host by default.

use crate::support::*;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

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
    let _group = crate::support::group(module_path!());
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

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// TLS as `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` configure it: the engine's certificate is
/// checked against the CA in DOCKER_CERT_PATH. (The relay does not demand the client
/// certificate: socat then fails TLS session resumption, "session id context uninitialized";
/// the docker CLI and dockerd are not affected.)
#[test]
fn a_tls_docker_host_is_verified_against_the_ca() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let port = free_port();
    // socat terminates TLS in front of the engine's socket
    let relay = Child(
        std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={0}/server.pem,key={0}/server-key.pem,cafile={0}/ca.pem,verify=0",
                certs.path().display()
            ))
            .arg("UNIX-CONNECT:/var/run/docker.sock")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("socat is needed for this test (apt-get install socat)"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "socat did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let list = |cert_path: &std::path::Path, verify: &str| {
        let mut cmd = benchctl();
        cmd.args(["--json", "list"])
            .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
            .env("DOCKER_TLS_VERIFY", verify)
            .env("DOCKER_CERT_PATH", cert_path);
        run(&mut cmd)
    };
    let r = list(certs.path(), "1");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.json().is_array(), "{}", r.stdout);
    // a server certificate from another CA is refused
    let other = tempfile::tempdir().unwrap();
    make_certs(other.path());
    let r = list(other.path(), "1");
    assert_eq!(r.code, 1, "{}", r.all());
    let error = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains(&format!("DOCKER_HOST=tcp://127.0.0.1:{port}")),
        "{error}"
    );
    assert!(
        error.to_ascii_lowercase().contains("certificate"),
        "{error}"
    );
    // without TLS the engine is not reached either
    let r = list(certs.path(), "");
    assert_eq!(r.code, 1, "{}", r.all());
    drop(relay);
}
