//! The swarm backend with a registry: the image is pushed (credentials from the environment,
//! named when missing) and the service runs it by digest. In the swarm module's group (one
//! swarm for all).

use crate::support::swarm::*;
use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// The registry's only user (its password's bcrypt hash is in [`Registry::start`]).
const REGISTRY_USER: &str = "bench";
const REGISTRY_PASSWORD: &str = "s3cret-registry-pass";

#[test]
fn with_a_registry_the_image_is_pushed_and_the_service_runs_it_by_digest() {
    let _group = crate::support::group("it::swarm");
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWR-1", "SWR-2", "SWR-3"]);
    let registry = Registry::start();
    let repo = swarm_app();
    let reg = ["--no-link", "--registry", &registry.host];

    // the registry wants credentials: without them the push fails and says where they go
    let r = deploy(&mut swarm_cmd(), &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("cannot push"), "{}", r.all());
    assert!(r.all().contains("BENCHCTL_REGISTRY_USER"), "{}", r.all());
    assert!(service_of("SWR-1").is_none());

    // from the environment
    let mut cmd = swarm_cmd();
    cmd.env("BENCHCTL_REGISTRY_USER", REGISTRY_USER)
        .env("BENCHCTL_REGISTRY_PASSWORD", REGISTRY_PASSWORD);
    let r = deploy(&mut cmd, &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
    let svc = service_of("SWR-1").unwrap();
    let image = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("{}/benchctl/swr-1:", registry.host);
    assert!(image.starts_with(&prefix), "{image}");
    let (tag, digest) = image[prefix.len()..].split_once('@').unwrap();
    assert!(
        digest.starts_with("sha256:"),
        "referenced by digest: {image}"
    );
    // the registry holds that tag, and its manifest is that digest
    let manifest = registry.get(&format!("/v2/benchctl/swr-1/manifests/{tag}"));
    assert!(
        manifest.contains(&format!("docker-content-digest: {digest}")),
        "{manifest}"
    );

    // from `docker login`'s config.json
    let config = tempfile::tempdir().unwrap();
    let auth = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    let json = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host);
    std::fs::write(config.path().join("config.json"), json).unwrap();
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", config.path());
    let r = deploy(&mut cmd, &repo, "SWR-2", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());

    // from docker's credential helper (`credsStore`), asked as the docker CLI asks it
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-benchtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread reg\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{REGISTRY_USER}\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}' \"$reg\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        store.path().join("config.json"),
        r#"{"credsStore":"benchtest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", store.path()).env("PATH", path);
    let r = deploy(&mut cmd, &repo, "SWR-3", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));

    for issue in ["SWR-1", "SWR-2", "SWR-3"] {
        let r = run(swarm_cmd().args(["--registry", &registry.host, "teardown", issue]));
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(service_of(issue).is_none());
        let filter = format!("label=benchctl.issue={issue}");
        let images = docker_lines(&["images", "-q", "--filter", &filter]);
        assert!(images.is_empty(), "images of {issue} left: {images:?}");
    }
}

fn base64(text: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A real registry (Debian's `docker-registry`) on a loopback port, until dropped; the engine
/// trusts 127.0.0.0/8 registries without TLS.
struct Registry {
    host: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let bin = "/usr/bin/docker-registry";
        assert!(
            std::path::Path::new(bin).exists(),
            "this test needs {bin} (apt-get install docker-registry); .ci/run installs it"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        // bcrypt of REGISTRY_PASSWORD
        let htpasswd = format!(
            "{REGISTRY_USER}:$2b$05$uQ4sOJpG7EZcdOV6m8HbCO.0oyOtg47rk.RUcvSL.el7FvPyMBInu\n"
        );
        std::fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: benchctl-test\n    path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http_get(&format!("http://{host}/v2/")).is_none() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start on {host}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Registry {
    /// The response head and body of an authenticated GET (a v2 manifest).
    fn get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.host).unwrap();
        let auth = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {auth}\r\n\
             Accept: application/vnd.docker.distribution.manifest.v2+json\r\n\r\n",
            self.host
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf.to_ascii_lowercase()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
