//! `benchctl serve` as a real process on 127.0.0.1, a raw HTTP client for it (so tests can send
//! any header and oversized bodies), and a recording HTTP endpoint (a fake Slack / Telegram).

use super::fake_tracker::{Auth, FakeTracker, Org, TrackerEnv};
use super::{benchctl, free_port, LoopbackServer};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "serve-tracker-canary-9c1d";
pub const ORG: &str = "org-serve";
pub const GITHUB_SECRET: &str = "gh-secret-canary-41f0";
pub const BITBUCKET_SECRET: &str = "bb-secret-canary-77e2";
pub const GITLAB_TOKEN: &str = "gl-token-canary-5a5a";
pub const HOOK_SECRET: &str = "tracker-hook-canary-0b0b";

/// The repositories of the pull-request fixtures, as serve names them (GitHub, Bitbucket
/// Cloud, Bitbucket Data Center, GitLab).
pub const REVIEW_FIXTURE_REPOS: &[&str] = &[
    "Codertocat/Hello-World",
    "lkysow/atlantis-example",
    "~gopher/webhook-test",
    "gitlabhq/gitlab-test",
];

/// A webhook payload from `tests/fixtures/webhooks/` (copies of `shared/fixtures/webhooks/`).
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/webhooks")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fixture as JSON, to be changed (issue keys, states) before it is signed.
pub fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

/// The HMAC-SHA256 signature header value senders compute.
pub fn sign(secret: &str, body: &[u8]) -> String {
    benchctl::server::webhook::sign(secret, body)
}

pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sets the member at `path` of a payload (a fixture edited for a test).
pub fn set_at(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        cur = &mut cur[*k];
    }
    cur[path[path.len() - 1]] = value;
}

pub fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut s = std::net::TcpStream::connect(addr).expect("serve listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // the server may answer (413) and close before the whole body is sent
    let _ = s.write_all(body);
    let (status, _, body) = read_answer(s);
    Answer { status, body }
}

/// One GET of `/` at `addr` for `host` (a proxy in front of benches: serve's or Traefik);
/// returns the status line's code, the headers and the body.
pub fn get_via(addr: &str, host: &str, accept: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("the proxy listens");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req =
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_answer(s)
}

/// The answer on a `Connection: close` connection: status code, headers, body.
fn read_answer(mut s: std::net::TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (code, head.to_string(), body.to_string())
}

/// A running `benchctl serve`.
pub struct Serve {
    child: Mutex<Option<Child>>,
    pub addr: String,
    pub state_dir: PathBuf,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

/// How to start the service.
pub struct ServeSetup<'a> {
    pub tracker: Option<&'a FakeTracker>,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    pub state_dir: PathBuf,
}

impl<'a> ServeSetup<'a> {
    /// Every source configured, the given Tracker, state in `state_dir`.
    pub fn new(tracker: Option<&'a FakeTracker>, state_dir: &Path) -> Self {
        ServeSetup {
            tracker,
            args: Vec::new(),
            envs: vec![
                ("BENCHCTL_GITHUB_SECRET".into(), GITHUB_SECRET.into()),
                ("BENCHCTL_BITBUCKET_SECRET".into(), BITBUCKET_SECRET.into()),
                ("BENCHCTL_GITLAB_TOKEN".into(), GITLAB_TOKEN.into()),
                ("BENCHCTL_TRACKER_HOOK_SECRET".into(), HOOK_SECRET.into()),
            ],
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// serve as the benches' front door on `proxy`, benches at `http://{issue}.bench.test`,
    /// without its periodic clean-up.
    pub fn front_door(self, proxy: &str) -> Self {
        self.args(&["--gc-interval", "0", "--proxy-listen", proxy])
            .args(&["--url-template", "http://{issue}.bench.test"])
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.envs.retain(|(key, _)| key != k);
        self.envs.push((k.to_string(), v.to_string()));
        self
    }

    /// Configures the repositories the review fixtures come from (their clone URLs are never
    /// used: reviews clone nothing).
    pub fn review_fixture_repos(mut self) -> Self {
        for name in REVIEW_FIXTURE_REPOS {
            self.args.push("--repo".into());
            self.args
                .push(format!("{name}=https://git.invalid/{name}.git"));
        }
        self
    }

    pub fn without_env(mut self, k: &str) -> Self {
        self.envs.retain(|(key, _)| key != k);
        self
    }

    pub fn start(self) -> Serve {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("serve.log");
        let mut cmd = benchctl();
        cmd.arg("serve")
            .arg("--listen")
            .arg(&addr)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(&self.args);
        if let Some(t) = self.tracker {
            cmd.tracker(t, TOKEN, ORG)
                .env("BENCHCTL_TRACKER_RETRIES", "2")
                .env("BENCHCTL_TRACKER_RETRY_SECS", "5");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("benchctl serve starts");
        let serve = Serve {
            child: Mutex::new(Some(child)),
            addr,
            state_dir: self.state_dir,
            log,
            _logdir: logdir,
        };
        serve.wait_until("it answers /healthz", Duration::from_secs(20), |s| {
            std::net::TcpStream::connect(&s.addr).is_ok()
        });
        serve
    }
}

impl Serve {
    /// The serve process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .lock()
            .unwrap()
            .as_ref()
            .expect("serve runs")
            .id()
    }

    pub fn post(&self, source: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut h = vec![("Content-Type", "application/json")];
        h.extend_from_slice(headers);
        http(&self.addr, "POST", &format!("/hooks/{source}"), &h, body)
    }

    pub fn get(&self, path: &str) -> Answer {
        http(&self.addr, "GET", path, &[], b"")
    }

    /// A GitHub delivery of `event`, signed with the test secret.
    pub fn github(&self, event: &str, delivery: &str, body: &[u8]) -> Answer {
        let sig = sign(GITHUB_SECRET, body);
        self.post(
            "github",
            &[
                ("X-GitHub-Event", event),
                ("X-GitHub-Delivery", delivery),
                ("X-Hub-Signature-256", &sig),
            ],
            body,
        )
    }

    /// A Tracker trigger call for `issue`.
    pub fn tracker_close(&self, issue: &str) -> Answer {
        let body = serde_json::to_vec(&serde_json::json!({ "issue": issue })).unwrap();
        self.post(
            "tracker",
            &[("Authorization", &format!("Bearer {HOOK_SECRET}"))],
            &body,
        )
    }

    /// The service's stderr so far.
    /// Jobs on disk in the state directory's queue.
    pub fn queue_files(&self) -> usize {
        std::fs::read_dir(self.state_dir.join("queue"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `cond` until it holds; panics with the service's log after `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&Serve) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "serve exited ({status}) while waiting until {what}; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; serve log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Jobs finished with `result` (from the log), e.g. `done`.
    pub fn finished_jobs(&self, result: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!(" {result}: ")) && l.contains("] job "))
            .count()
    }

    /// The number after `name{labels}` in /metrics (0 when absent).
    pub fn metric(&self, series: &str) -> u64 {
        self.get("/metrics")
            .body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.lock().unwrap().take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        child.wait().unwrap()
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP endpoint that records every request (path and body) and answers `status`.
pub struct Recorder {
    pub url: String,
    pub requests: Arc<Mutex<Vec<(String, Value)>>>,
    _server: LoopbackServer,
}

impl Recorder {
    pub fn start(status: u16) -> Recorder {
        let requests: Arc<Mutex<Vec<(String, Value)>>> = Default::default();
        let rec = requests.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let rec = rec.clone();
                async move {
                    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    rec.lock().unwrap().push((uri.path().to_string(), v));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            });
        let server = LoopbackServer::start(app);
        Recorder {
            url: server.url.clone(),
            requests,
            _server: server,
        }
    }

    pub fn texts(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v["text"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// The fake Tracker with the test token and organization.
pub fn serve_tracker() -> FakeTracker {
    FakeTracker::start(Auth::OAuth(TOKEN), Org::Org(ORG))
}

/// A GitHub push of `branch` at `commit` to repository `acme/app`.
pub fn github_push(branch: &str, commit: &str, deleted: bool) -> Vec<u8> {
    let mut v = fixture_json("github/push.json");
    v["ref"] = json!(format!("refs/heads/{branch}"));
    v["deleted"] = json!(deleted);
    v["after"] = json!(if deleted {
        "0".repeat(40)
    } else {
        commit.to_string()
    });
    v["repository"]["full_name"] = json!("acme/app");
    serde_json::to_vec(&v).unwrap()
}

/// A GitLab push of `branch` at `commit` to project `acme/app`.
pub fn gitlab_push(branch: &str, commit: &str) -> Vec<u8> {
    let mut v = fixture_json("gitlab/push-event.json");
    v["ref"] = json!(format!("refs/heads/{branch}"));
    v["after"] = json!(commit);
    v["checkout_sha"] = json!(commit);
    v["project"]["path_with_namespace"] = json!("acme/app");
    serde_json::to_vec(&v).unwrap()
}

/// A Bitbucket Data Center deletion of `branch` in repository `ACME/app`.
pub fn bitbucket_delete(branch: &str, old: &str) -> Vec<u8> {
    let mut v = fixture_json("bitbucket-server/repo-refs-changed.json");
    v["repository"]["project"]["key"] = json!("ACME");
    v["repository"]["slug"] = json!("app");
    v["changes"] = json!([{
        "ref": {"id": format!("refs/heads/{branch}"), "displayId": branch, "type": "BRANCH"},
        "refId": format!("refs/heads/{branch}"),
        "fromHash": old,
        "toHash": "0".repeat(40),
        "type": "DELETE"
    }]);
    serde_json::to_vec(&v).unwrap()
}

/// The issue's bench link in the fake Tracker.
pub fn bench_url(t: &FakeTracker, issue: &str) -> Option<String> {
    t.field(issue, "benchLink")
        .and_then(|v| v.as_str().map(str::to_string))
}

/// Starts `benchctl serve` with `envs` and `args`, expecting it to exit: its code and stderr.
/// A service that keeps running past 20 s fails the test.
pub fn serve_exit(envs: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let state = tempfile::tempdir().unwrap();
    let mut cmd = benchctl();
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--state-dir")
        .arg(state.path())
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with {envs:?} {args:?}; it must refuse to");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
