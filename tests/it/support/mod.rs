//! Test support: real git repositories, a git daemon on loopback, a fake Tracker that follows
//! `shared/reference/tracker-api.md`, the real binary, and cleanup of what each test creates.

pub mod code_hosts;
mod engine;
pub use engine::*;
pub mod fake_tracker;
pub use fake_tracker::TrackerEnv;
pub mod progress;
pub mod registry;
pub mod serve;
pub mod snapshot;
pub mod swarm;
pub mod traefik;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Fails loudly (never skips) when the engine or busybox is missing.
pub fn require_docker() {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "these tests need a running Docker engine (`docker info` failed); .ci/run starts one"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "these tests need {BUSYBOX} (apt-get install busybox-static)"
    );
}

pub const BUSYBOX: &str = "/bin/busybox";

/// Which test group runs now and how many of its tests: tests of one group (a module of this
/// binary) run in parallel, tests of different groups one group after another, as when each
/// module was a test binary of its own.
static GROUP: std::sync::Mutex<(Option<&'static str>, usize)> = std::sync::Mutex::new((None, 0));
static GROUP_FREE: std::sync::Condvar = std::sync::Condvar::new();

/// Held by a test for its whole run (`let _group = group(module_path!());`).
#[must_use]
pub struct GroupGuard;

/// Waits until no test of another group runs, then joins `name`.
pub fn group(name: &'static str) -> GroupGuard {
    let mut g = GROUP.lock().unwrap_or_else(|e| e.into_inner());
    while g.0.is_some_and(|current| current != name) {
        g = GROUP_FREE.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    g.0 = Some(name);
    g.1 += 1;
    GroupGuard
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let mut g = GROUP.lock().unwrap_or_else(|e| e.into_inner());
        g.1 -= 1;
        if g.1 == 0 {
            g.0 = None;
            GROUP_FREE.notify_all();
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

pub fn git_env(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The Dockerfile of the busybox web app: serves `/www` on port 8080.
pub const APP_DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

/// A Compose file of one service, `web`, built from the busybox app (publishing its port 8080),
/// with `extra` lines of that service's keys (each `key: value`).
pub fn web_compose(extra: &[&str]) -> String {
    let mut s = String::from("services:\n  web:\n    build: .\n    ports: [\"8080\"]\n");
    for line in extra {
        s.push_str(&format!("    {line}\n"));
    }
    s
}

/// A real git repository holding the busybox web app on `main`.
pub struct AppRepo {
    pub dir: tempfile::TempDir,
}

impl AppRepo {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("benchctl-test-repo-")
            .tempdir()
            .unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
        std::fs::create_dir_all(dir.path().join("www")).unwrap();
        let repo = AppRepo { dir };
        repo.write("Dockerfile", APP_DOCKERFILE);
        repo.write("www/index.html", "main\n");
        repo.commit("init");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    pub fn write(&self, rel: &str, content: &str) {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, msg: &str) -> String {
        git(self.path(), &["add", "-A"]);
        git(self.path(), &["commit", "-q", "--allow-empty", "-m", msg]);
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// Commits everything with author and committer date `date` (e.g. `2026-01-01T00:00:00Z`).
    pub fn commit_at(&self, msg: &str, date: &str) -> String {
        git(self.path(), &["add", "-A"]);
        let env = [("GIT_COMMITTER_DATE", date), ("GIT_AUTHOR_DATE", date)];
        git_env(
            self.path(),
            &["commit", "-q", "--allow-empty", "-m", msg],
            &env,
        );
        git(self.path(), &["rev-parse", "HEAD"])
    }

    /// Creates (or moves to) `branch` with `www/index.html` = `content`; returns the commit.
    pub fn branch_with(&self, branch: &str, content: &str) -> String {
        git(self.path(), &["checkout", "-q", "-B", branch]);
        self.write("www/index.html", content);
        self.commit(&format!("{branch}: {content}"))
    }
}

/// An axum app served on 127.0.0.1 by a thread of its own, until dropped.
pub struct LoopbackServer {
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackServer {
    pub fn start(app: axum::Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        LoopbackServer {
            url,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `git daemon` serving a base directory on loopback (the shallow-capable git:// transport).
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn serve(base: &Path) -> Self {
        let port = free_port();
        let child = Command::new("git")
            .arg("daemon")
            .arg("--reuseaddr")
            .arg("--export-all")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        GitDaemon { child, port }
    }

    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare copy of a repository, served over git:// by a `git daemon` of its own.
pub struct Served {
    pub bare: PathBuf,
    pub url: String,
    _daemon: GitDaemon,
    _base: tempfile::TempDir,
}

impl Served {
    pub fn new(repo: &AppRepo) -> Self {
        let base = tempfile::tempdir().unwrap();
        git(
            base.path(),
            &["clone", "-q", "--bare", &repo.path_str(), "app.git"],
        );
        let daemon = GitDaemon::serve(base.path());
        Served {
            bare: base.path().join("app.git"),
            url: daemon.url("app.git"),
            _daemon: daemon,
            _base: base,
        }
    }
}

/// What the tests' benches may name (`--allow-images`).
pub const TEST_IMAGES: &str = "docker.io/library/*,docker.io/benchctl-test/*";

/// The real binary, with a clean benchctl environment and plain output.
pub fn benchctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_benchctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BENCHCTL_") || k.ends_with("_BRANCH") || k.starts_with("GITHUB_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("CI_COMMIT_REF_NAME");
    // the tests' deploys build with the classic builder unless they choose (the default,
    // `auto`, would switch to BuildKit while the bound test bounds the engine's BuildKit);
    // BENCHCTL_TEST_BUILDER=buildkit runs them with that builder (a survey: the tests of the
    // classic builder's limits and commit step then fail by design)
    let builder = std::env::var("BENCHCTL_TEST_BUILDER").unwrap_or_else(|_| "classic".into());
    cmd.env("BENCHCTL_BUILDER", builder);
    cmd.env("CI", "true");
    cmd.env("BENCHCTL_PUBLIC_HOST", "127.0.0.1");
    // the official images' names (built from Debian's packages, tests/images.sh) and the
    // tests' own images; the --allow-images test sets its own
    cmd.env("BENCHCTL_ALLOW_IMAGES", TEST_IMAGES);
    // one cache shared by all tests (as by concurrent deploys on one machine), under target/
    cmd.env(
        "BENCHCTL_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("benchctl-cache"),
    );
    cmd.stdin(Stdio::null());
    cmd
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn run(cmd: &mut Command) -> Run {
    let out: Output = cmd.output().expect("benchctl runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A plain HTTP GET; returns the body, or None when nothing answers.
pub fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Runs `openssl args` in `dir`.
pub fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for this test");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as the docker CLI
/// expects them in DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem).
pub fn make_certs(dir: &std::path::Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
    std::fs::copy(dir.join("client.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
}
