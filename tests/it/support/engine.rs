//! The engine side of the tests: removing what a test made (by its issues' labels), reading
//! containers, benches and their state back, test networks, and `docker build`.

use super::*;

/// Removes every container and image labelled with the issue, when the test ends (pass or fail).
pub struct Cleanup(pub Vec<String>);

impl Cleanup {
    pub fn issues(keys: &[&str]) -> Self {
        let c = Cleanup(keys.iter().map(|k| k.to_string()).collect());
        c.run();
        c
    }

    fn run(&self) {
        for key in &self.0 {
            let filter = format!("label=benchctl.issue={key}");
            // swarm services (an engine outside a swarm refuses to list them: nothing to do)
            if let Ok(out) = Command::new("docker")
                .args(["service", "ls", "-q", "--filter", &filter])
                .output()
            {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(["service", "rm", id]).output();
                    // its task stops after the call: wait, so that the image can go
                    let task = format!("label=com.docker.swarm.service.id={id}");
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while Instant::now() < deadline
                        && !docker_lines(&["ps", "-q", "--filter", &task]).is_empty()
                    {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            // the swarm backend's lock and result markers (swarm configs)
            if let Ok(out) = Command::new("docker")
                .args(["config", "ls", "-q", "--filter", &filter])
                .output()
            {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("docker").args(["config", "rm", id]).output();
                }
            }
            for id in docker_lines(&["ps", "-aq", "--filter", &filter]) {
                let _ = Command::new("docker").args(["rm", "-f", &id]).output();
            }
            for id in docker_lines(&["images", "-q", "--filter", &filter]) {
                let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
            }
            // a multi-service bench's network and volumes (a swarm detaches a removed
            // service's tasks from them a moment later: tried again until they are gone)
            for kind in ["network", "volume"] {
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    let left = docker_lines(&[kind, "ls", "-q", "--filter", &filter]);
                    if left.is_empty() || Instant::now() > deadline {
                        break;
                    }
                    for id in left {
                        let _ = Command::new("docker").args([kind, "rm", &id]).output();
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

pub fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.dedup();
    v
}

/// `docker build` (classic builder, as benchctl uses) of `dir` tagged `tag`; panics with the
/// engine's message when it fails.
pub fn docker_build(dir: &Path, tag: &str, extra: &[&str]) {
    let out = Command::new("docker")
        .args(["build", "-q"])
        .args(extra)
        .args(["-t", tag])
        .arg(dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The issue's row of `benchctl --json list`.
pub fn listed(issue: &str) -> serde_json::Value {
    listed_by(benchctl(), issue)
}

/// The issue's row of `--json list` run by `cmd` (e.g. with another backend).
pub fn listed_by(mut cmd: Command, issue: &str) -> serde_json::Value {
    let r = run(cmd.args(["--json", "list"]));
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["issue"] == issue)
        .unwrap_or_else(|| panic!("{issue} not listed: {}", r.stdout))
        .clone()
}

/// Bench containers of an issue (all states, lock and result markers left out), as
/// `id name state`.
pub fn issue_containers(key: &str) -> Vec<String> {
    all_issue_containers(key)
        .into_iter()
        .filter(|c| {
            !c.contains(" benchctl-lock-")
                && !c.contains(" benchctl-result-")
                && !c.contains(" benchctl-pin.")
        })
        .collect()
}

/// Whether the issue's lock container exists.
pub fn issue_locked(key: &str) -> bool {
    all_issue_containers(key)
        .iter()
        .any(|c| c.contains(" benchctl-lock-"))
}

/// A Docker network for one test (a proxy's network), removed when dropped: drop it after the
/// benches on it (locals drop in reverse order).
pub struct Network(pub String);

impl Network {
    pub fn create(name: &str) -> Network {
        let _ = Command::new("docker")
            .args(["network", "rm", name])
            .output();
        docker_lines(&["network", "create", name]);
        Network(name.to_string())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// The engine's state (`running`, `exited`) of `issue`'s bench container.
pub fn bench_state(issue: &str) -> String {
    docker_lines(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        &format!("benchctl-{}", issue.to_lowercase()),
    ])
    .join("")
}

/// Every container labelled with the issue, as `id name state`.
pub fn all_issue_containers(key: &str) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=benchctl.issue={key}"),
        "--format",
        "{{.ID}} {{.Names}} {{.State}}",
    ])
}

/// Whether the running bench container `id` can make a device node (the `MKNOD` capability a
/// bench does not get).
pub fn can_make_device_node(id: &str) -> bool {
    Command::new("docker")
        .args([
            "exec",
            id,
            "/bin/busybox",
            "mknod",
            "/www/mem",
            "c",
            "1",
            "1",
        ])
        .output()
        .expect("docker runs")
        .status
        .success()
}
