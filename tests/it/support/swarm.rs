//! A single-node swarm for tests that need one (initialised when the engine is in none, and
//! left again when the last test of this process using it is done), and what the swarm
//! modules share: the app, the swarm-backend command, a deploy with small limits, a service's
//! inspection.

use super::fake_tracker::{FakeTracker, TrackerEnv};
use super::{benchctl, docker_lines, listed_by, require_docker, run, AppRepo, Run};
use serde_json::Value;
use std::process::Command;
use std::sync::Mutex;

/// How many tests use the swarm now, and whether this process initialised it.
static SWARM: Mutex<(usize, bool)> = Mutex::new((0, false));

/// A single-node swarm for the test's duration: initialised when the engine is in none, left
/// again by the last user when this process initialised it.
pub struct SwarmGuard;

pub fn swarm_state() -> String {
    docker_lines(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .pop()
        .unwrap_or_default()
}

impl SwarmGuard {
    pub fn acquire() -> SwarmGuard {
        require_docker();
        let mut s = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        if swarm_state() != "active" {
            let out = Command::new("docker")
                .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "docker swarm init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            s.1 = true;
        }
        s.0 += 1;
        SwarmGuard
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        let mut s = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        s.0 -= 1;
        if s.0 == 0 && s.1 {
            let _ = Command::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
            s.1 = false;
        }
    }
}

pub const TOKEN: &str = "swarm-canary-5f5f5f";

/// The app prints a line at start (for `logs`) and serves `/www` on 8080.
pub const SWARM_APP: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"sh\", \"-c\", \"echo bench-started; exec /bin/busybox httpd -f -p 8080 -h /www\"]\n";

pub fn swarm_app() -> AppRepo {
    let repo = AppRepo::new();
    repo.write("Dockerfile", SWARM_APP);
    repo.commit("swarm app");
    repo
}

pub fn tracker_env(cmd: &mut Command, t: &FakeTracker) {
    cmd.tracker(t, TOKEN, "org-1");
}

/// `benchctl --backend swarm --publish-mode host ...` (host mode: this engine's routing mesh
/// does not forward).
pub fn swarm_cmd() -> Command {
    let mut cmd = benchctl();
    cmd.env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host");
    cmd
}

/// `deploy main` of `repo` as `issue` with small limits; `timeout` seconds to answer.
pub fn deploy(cmd: &mut Command, repo: &AppRepo, issue: &str, timeout: u32, extra: &[&str]) -> Run {
    let timeout = timeout.to_string();
    let repo = repo.path_str();
    let args = [
        "--json", "deploy", "main", "--repo", &repo, "--issue", issue,
    ];
    run(cmd
        .args(args)
        .args([
            "--cpus",
            "0.1",
            "--memory",
            "64m",
            "--ready-timeout",
            &timeout,
        ])
        .args(extra))
}

pub fn service_of(issue: &str) -> Option<Value> {
    let filter = format!("label=benchctl.issue={issue}");
    let ids = docker_lines(&["service", "ls", "-q", "--filter", &filter]);
    assert!(ids.len() <= 1, "one service per issue: {ids:?}");
    let id = ids.first()?;
    let out = Command::new("docker")
        .args(["service", "inspect", id])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(v[0].clone())
}

/// The swarm backend's `list --json` entry of `issue`.
pub fn listed_swarm(issue: &str) -> Value {
    listed_by(swarm_cmd(), issue)
}
