//! Fetching one branch: shallow over git://, full over the local transport.

use crate::support::*;
use benchctl::git::{fetch_branch, resolve_repo};
use benchctl::output::{Event, Recorder, SharedReporter};
use benchctl::Error;
use std::sync::Arc;

fn repo_with_history() -> AppRepo {
    let repo = AppRepo::new();
    for i in 0..3 {
        repo.branch_with("feature/GIT-1", &format!("v{i}\n"));
    }
    repo.branch_with("other", "other\n");
    repo
}

#[test]
fn git_daemon_fetch_is_shallow_and_only_the_branch() {
    let _group = crate::support::group(module_path!());
    let repo = repo_with_history();
    let head = git(repo.path(), &["rev-parse", "feature/GIT-1"]);
    let served = Served::new(&repo);

    let spec = resolve_repo(Some(&served.url.clone())).unwrap();
    assert!(!spec.is_local);
    let dest = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let rec = Arc::new(Recorder::default());
    let reporter: SharedReporter = rec.clone();
    let fetched = fetch_branch(
        &spec,
        "feature/GIT-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap();
    assert_eq!(fetched.commit, head);
    assert!(fetched.time > 1_700_000_000);
    assert_eq!(
        benchctl::git::remote_head(&spec, "feature/GIT-1").unwrap(),
        Some(head.clone())
    );
    assert_eq!(benchctl::git::remote_head(&spec, "nope").unwrap(), None);

    let fetched =
        git2::Repository::open_bare(benchctl::git::cache_path(cache.path(), &spec)).unwrap();
    assert!(fetched.is_shallow(), "fetch over git:// must be shallow");
    assert!(fetched.find_reference("refs/remotes/origin/other").is_err());
    assert_eq!(
        std::fs::read_to_string(dest.path().join("src/www/index.html")).unwrap(),
        "v2\n"
    );
    assert!(
        !dest.path().join("src/.git").exists(),
        "no .git in the build context"
    );
    let events = rec.0.lock().unwrap();
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::FetchProgress { .. })));
}

#[test]
fn local_path_fetch_falls_back_to_full_and_checks_out() {
    let _group = crate::support::group(module_path!());
    let repo = repo_with_history();
    let spec = resolve_repo(Some(&repo.path_str())).unwrap();
    assert!(spec.is_local);
    let dest = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reporter: SharedReporter = Arc::new(benchctl::output::Silent);
    let fetched = fetch_branch(
        &spec,
        "feature/GIT-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap();
    let head = git(repo.path(), &["rev-parse", "feature/GIT-1"]);
    assert_eq!(fetched.commit, head);
    assert_eq!(
        benchctl::git::remote_head(&spec, "feature/GIT-1").unwrap(),
        Some(head)
    );
    assert_eq!(
        std::fs::read_to_string(dest.path().join("src/www/index.html")).unwrap(),
        "v2\n"
    );
}

#[test]
fn missing_branch_and_bad_repositories_are_named() {
    let _group = crate::support::group(module_path!());
    let repo = repo_with_history();
    let spec = resolve_repo(Some(&repo.path_str())).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reporter: SharedReporter = Arc::new(benchctl::output::Silent);
    let err = fetch_branch(
        &spec,
        "feature/GONE-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap_err();
    assert!(matches!(err, Error::BranchNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("feature/GONE-1") && msg.contains(&repo.path_str()),
        "{msg}"
    );
    assert_eq!(err.exit_code(), 2);

    let not_repo = tempfile::tempdir().unwrap();
    let err = resolve_repo(Some(&not_repo.path().to_string_lossy())).unwrap_err();
    assert!(err.to_string().contains("not a git repository"), "{err}");

    // nothing listens on this port: a clear git error, not a hang
    let port = free_port();
    let spec = resolve_repo(Some(&format!("git://127.0.0.1:{port}/app.git"))).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let err = fetch_branch(
        &spec,
        "feature/GIT-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Git { .. }), "{err}");
    assert!(err.to_string().contains("feature/GIT-1"), "{err}");
}

fn push_to_bare(repo: &AppRepo, bare: &std::path::Path, branch: &str) {
    git(
        repo.path(),
        &[
            "push",
            "-q",
            "-f",
            &bare.to_string_lossy(),
            &format!("{branch}:{branch}"),
        ],
    );
}

#[test]
fn cached_clone_is_updated_incrementally_and_stays_shallow() {
    let _group = crate::support::group(module_path!());
    let repo = repo_with_history();
    let served = Served::new(&repo);
    let spec = resolve_repo(Some(&served.url.clone())).unwrap();
    let cache = tempfile::tempdir().unwrap();

    let fetch = |expect: &str| {
        let dest = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let reporter: SharedReporter = rec.clone();
        fetch_branch(
            &spec,
            "feature/GIT-1",
            cache.path(),
            dest.path(),
            "Dockerfile",
            &reporter,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.path().join("src/www/index.html")).unwrap(),
            expect
        );
        let bytes = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::FetchProgress { received_bytes, .. } => Some(*received_bytes),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        bytes
    };
    let first = fetch("v2\n");
    repo.branch_with("feature/GIT-1", "v3\n");
    push_to_bare(&repo, &served.bare, "feature/GIT-1");
    let second = fetch("v3\n");
    assert!(
        first > 500_000 && second < first / 20,
        "the second fetch was not incremental: {first} then {second} bytes"
    );
    let clone =
        git2::Repository::open_bare(benchctl::git::cache_path(cache.path(), &spec)).unwrap();
    assert!(clone.is_shallow(), "a shallow clone must stay shallow");
    let repos: Vec<_> = std::fs::read_dir(cache.path().join("repos"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "git"))
        .collect();
    assert_eq!(repos.len(), 1, "one clone per repository");
}

#[test]
fn cached_clone_survives_killed_fetches_and_concurrent_ones() {
    let _group = crate::support::group(module_path!());
    let repo = repo_with_history();
    let served = Served::new(&repo);
    let spec = resolve_repo(Some(&served.url.clone())).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    let reporter: SharedReporter = Arc::new(benchctl::output::Silent);
    fetch_branch(
        &spec,
        "feature/GIT-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap();

    // what a fetch killed midway leaves: git lock files
    let dir = benchctl::git::cache_path(cache.path(), &spec);
    assert!(dir.is_dir(), "the clone is cached");
    std::fs::create_dir_all(dir.join("refs/remotes/origin/feature")).unwrap();
    std::fs::write(dir.join("refs/remotes/origin/feature/GIT-1.lock"), "").unwrap();
    std::fs::write(dir.join("shallow.lock"), "").unwrap();
    repo.branch_with("feature/GIT-1", "after the kill\n");
    push_to_bare(&repo, &served.bare, "feature/GIT-1");
    let dest = tempfile::tempdir().unwrap();
    fetch_branch(
        &spec,
        "feature/GIT-1",
        cache.path(),
        dest.path(),
        "Dockerfile",
        &reporter,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.path().join("src/www/index.html")).unwrap(),
        "after the kill\n"
    );

    // eight fetches at once into the same clone, of two branches
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let spec = spec.clone();
            let cache = cache.path().to_path_buf();
            let reporter = reporter.clone();
            std::thread::spawn(move || {
                let branch = if i % 2 == 0 { "feature/GIT-1" } else { "other" };
                let dest = tempfile::tempdir().unwrap();
                fetch_branch(&spec, branch, &cache, dest.path(), "Dockerfile", &reporter).unwrap();
                std::fs::read_to_string(dest.path().join("src/www/index.html")).unwrap()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let content = h.join().unwrap();
        let expect = if i % 2 == 0 {
            "after the kill\n"
        } else {
            "other\n"
        };
        assert_eq!(content, expect);
    }
}

#[test]
fn only_the_build_context_is_written_and_it_matches_a_full_checkout() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/GIT-2"]);
    repo.write(".dockerignore", "data\n!data/keep.txt\n*.md\ndocker\n");
    for f in [
        "data/a.bin",
        "data/keep.txt",
        "data/sub/b.bin",
        "README.md",
        "src/x.rs",
        "docker/Dockerfile",
        "docker/other",
    ] {
        repo.write(f, f);
    }
    std::fs::set_permissions(
        repo.path().join("src/x.rs"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("x.rs", repo.path().join("src/link")).unwrap();
    repo.commit("context");
    let spec = resolve_repo(Some(&repo.path_str())).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let reporter: SharedReporter = Arc::new(benchctl::output::Silent);
    for dockerfile in ["Dockerfile", "docker/Dockerfile"] {
        let dest = tempfile::tempdir().unwrap();
        fetch_branch(
            &spec,
            "feature/GIT-2",
            cache.path(),
            dest.path(),
            dockerfile,
            &reporter,
        )
        .unwrap();
        let src = dest.path().join("src");
        assert!(!src.join("data/a.bin").exists() && !src.join("data/sub").exists());
        assert!(!src.join("README.md").exists());
        assert!(src.join("data/keep.txt").exists());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(src.join("src/x.rs"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o111, 0o111, "the executable bit is kept");
        assert_eq!(
            std::fs::read_link(src.join("src/link")).unwrap(),
            std::path::Path::new("x.rs")
        );
        // the context is the same as from a full checkout
        let full = tempfile::tempdir().unwrap();
        git(
            full.path(),
            &["clone", "-q", "-b", "feature/GIT-2", &repo.path_str(), "w"],
        );
        std::fs::remove_dir_all(full.path().join("w/.git")).unwrap();
        assert_eq!(
            benchctl::build::context_files(&src, dockerfile).unwrap(),
            benchctl::build::context_files(&full.path().join("w"), dockerfile).unwrap(),
            "with {dockerfile}"
        );
    }
}

/// A smart-HTTP git server over TLS (`git http-backend` as CGI behind Python's `http.server`,
/// the server certificate from `certs`), serving the bare repositories under `root`.
struct HttpsGit {
    child: std::process::Child,
    port: u16,
}

const HTTPS_GIT: &str = r#"
import http.server, os, ssl, subprocess, sys
root, cert, key, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self): self.cgi()
    def do_POST(self): self.cgi()
    def cgi(self):
        path, _, query = self.path.partition('?')
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            body = b''
            while True:
                n = int(self.rfile.readline().strip().split(b';')[0], 16)
                if n == 0:
                    self.rfile.readline(); break
                body += self.rfile.read(n); self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        env = {'GIT_PROJECT_ROOT': root, 'GIT_HTTP_EXPORT_ALL': '1', 'PATH_INFO': path,
               'QUERY_STRING': query, 'REQUEST_METHOD': self.command,
               'CONTENT_TYPE': self.headers.get('Content-Type', ''),
               'CONTENT_LENGTH': str(len(body)), 'PATH': os.environ['PATH']}
        out = subprocess.run(['git', 'http-backend'], input=body, env=env,
                             capture_output=True).stdout
        sep = b'\r\n\r\n' if b'\r\n\r\n' in out else b'\n\n'
        head, _, rest = out.partition(sep)
        status, headers = 200, []
        for line in head.decode().splitlines():
            k, _, v = line.partition(':')
            if k.lower() == 'status': status = int(v.split()[0])
            elif k: headers.append((k, v.strip()))
        self.send_response(status)
        for k, v in headers: self.send_header(k, v)
        self.send_header('Content-Length', str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
srv = http.server.ThreadingHTTPServer(('127.0.0.1', port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

impl HttpsGit {
    fn serve(root: &std::path::Path, certs: &std::path::Path) -> HttpsGit {
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args(["-c", HTTPS_GIT])
            .arg(root)
            .arg(certs.join("server.pem"))
            .arg(certs.join("server-key.pem"))
            .arg(port.to_string())
            .spawn()
            .expect("python3 runs the https git server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the https git server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        HttpsGit { child, port }
    }
}

impl Drop for HttpsGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary hides the system's CA bundle from libgit2's start (a no-op deploy would spend
/// most of its time parsing it) and gives it to libgit2 before an https remote: the remote's
/// certificate is still checked, against the bundle the process started with.
#[test]
fn an_https_remote_is_checked_against_the_ca_bundle_benchctl_started_with() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    repo.write("benchctl.toml", "port = 8181\n");
    repo.branch_with("feature/GIT-9", "https\n");
    let root = tempfile::tempdir().unwrap();
    git(
        root.path(),
        &["clone", "-q", "--bare", &repo.path_str(), "app.git"],
    );
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let server = HttpsGit::serve(root.path(), certs.path());
    let url = format!("https://127.0.0.1:{}/app.git", server.port);
    let config = |ca: Option<&std::path::Path>| {
        let mut cmd = benchctl();
        cmd.args(["config", "feature/GIT-9", "--repo", &url, "--json"]);
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(&mut cmd)
    };
    // the test's CA: the branch's benchctl.toml is read over https
    let r = config(Some(&certs.path().join("ca.pem")));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("8181"), "{}", r.all());
    // the system's bundle, which does not hold the test's CA: refused
    let r = config(None);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("the SSL certificate is invalid"),
        "{}",
        r.all()
    );
}
