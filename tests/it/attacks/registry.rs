//! Issue 29, high 1: the operator's registry credentials go only to the operator's registry. A
//! branch's Compose file names an `image:` in a registry of its own (a recorder on loopback
//! that asks every caller for Basic credentials, as a registry does); a swarm deploy with
//! `--registry` and a canary password must never hand that registry the canary.

use crate::support::registry::*;
use crate::support::swarm::*;
use crate::support::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// A registry of the branch's choosing: answers every request `401` with a Basic challenge and
/// records each `Authorization` header it is sent.
struct Recorder {
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (s, r) = (seen.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        *r.lock().unwrap() += 1;
                        let _ = conn.write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"evil\"\r\n\
                              Docker-Distribution-Api-Version: registry/2.0\r\n\
                              Content-Length: 0\r\n\r\n",
                        );
                    } else if line.to_ascii_lowercase().starts_with("authorization:") {
                        s.lock().unwrap().push(line.trim().to_string());
                    }
                    line.clear();
                }
            }
        });
        Recorder {
            host,
            seen,
            requests,
        }
    }
}

/// An image removed when dropped.
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &self.0])
            .output();
    }
}

#[test]
fn registry_credentials_never_reach_a_registry_the_branch_names() {
    let _group = crate::support::group("it::swarm");
    let _swarm = SwarmGuard::acquire();
    let _c = Cleanup::issues(&["ATKR-1"]);
    let registry = Registry::start();
    let evil = Recorder::start();
    // the image is on the engine already (nothing to pull), so the service is created and the
    // swarm resolves its digest at the branch's registry
    let image = format!("{}/x:1", evil.host);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"60\"]\n",
    )
    .unwrap();
    docker_build(dir.path(), &image, &[]);
    let _image = Removed(image.clone());
    let repo = swarm_app();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKR-1"]);
    repo.write(
        "compose.yaml",
        &format!(
            "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n  side:\n    image: {image}\n"
        ),
    );
    repo.commit("an image of the branch's registry");
    let r = run(swarm_cmd()
        .env("BENCHCTL_REGISTRY_USER", REGISTRY_USER)
        .env("BENCHCTL_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
        // the operator allows the branch's registry (--allow-images): the credentials still stay
        .env("BENCHCTL_ALLOW_IMAGES", "*")
        .args([
            "deploy",
            "feature/ATKR-1",
            "--repo",
            &repo.path_str(),
            "--no-link",
            "--registry",
            &registry.host,
            "--ready-timeout",
            "15",
        ]));
    // whether the deploy succeeds does not matter here; what the branch's registry was sent does
    assert!(
        *evil.requests.lock().unwrap() > 0,
        "the engine never asked the branch's registry, so this test proves nothing: {}",
        r.all()
    );
    let canary = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    let seen = evil.seen.lock().unwrap().clone();
    assert!(
        !seen.iter().any(|a| a.contains(&canary)),
        "the operator's registry credentials reached {}: {seen:?}",
        evil.host
    );
    assert!(!r.all().contains(REGISTRY_PASSWORD));
    let _ = run(swarm_cmd().args(["teardown", "ATKR-1", "--keep-link"]));
}
