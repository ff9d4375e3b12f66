//! A single-node swarm for tests that need one: initialised when the engine is in none, and
//! left again when the last test of this process using it is done.

use super::{docker_lines, require_docker};
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
