//! A real registry (Debian's `docker-registry`) on a loopback port with one user, for the
//! swarm backend's pushes, and a base64 for the Basic credentials the tests write.

use super::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// The registry's only user (its password's bcrypt hash is in [`Registry::start`]).
pub const REGISTRY_USER: &str = "bench";
pub const REGISTRY_PASSWORD: &str = "s3cret-registry-pass";

pub fn base64(text: &str) -> String {
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
pub struct Registry {
    pub host: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
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
    pub fn get(&self, path: &str) -> String {
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
