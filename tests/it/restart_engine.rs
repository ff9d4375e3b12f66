//! After an engine restart, benches come back (restart policy `unless-stopped`) and `list`
//! finds them by label, and sleeping benches keep sleeping (also a Compose service with
//! `restart: always`, which the engine would otherwise revive). This restarts the Docker
//! engine: its module is a test group of its own, which runs when no other module's tests
//! run. It needs root (as CI runs).

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn engine_up() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn dockerd_pid() -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()? {
        let entry = entry.ok()?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if comm.trim() == "dockerd" {
            return Some(pid);
        }
    }
    None
}

/// Restarts the engine the way it was started: through systemd when it manages docker, else
/// by stopping the dockerd process and starting it again with the same command line.
fn restart_engine() {
    let systemd = Command::new("systemctl")
        .args(["is-active", "--quiet", "docker"])
        .status()
        .is_ok_and(|s| s.success());
    if systemd {
        assert!(Command::new("systemctl")
            .args(["restart", "docker"])
            .status()
            .unwrap()
            .success());
    } else {
        let pid = dockerd_pid().expect("a dockerd process (the engine runs locally)");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ok = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot stop dockerd (pid {pid}); this test needs root");
        let deadline = Instant::now() + Duration::from_secs(90);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < deadline, "dockerd did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
        let log =
            std::fs::File::create(std::env::temp_dir().join("benchctl-test-dockerd.log")).unwrap();
        Command::new("setsid")
            .arg("-f")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .expect("dockerd starts again");
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while !engine_up() {
        assert!(Instant::now() < deadline, "the engine did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn benches_come_back_after_an_engine_restart_and_list_finds_them() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["RST-1", "RST-2", "RST-3"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/RST-1", "survives\n");
    let deploy = |branch: &str| {
        let r = run(benchctl().args(["deploy", branch, "--repo", &repo.path_str(), "--json"]));
        assert_eq!(r.code, 0, "{}", r.all());
    };
    deploy("feature/RST-1");
    // two sleeping benches: one container, and a Compose service that asks for `always`
    repo.branch_with("feature/RST-2", "asleep\n");
    deploy("feature/RST-2");
    repo.branch_with("feature/RST-3", "asleep too\n");
    repo.write("compose.yaml", &web_compose(&["restart: always"]));
    repo.commit("a Compose bench");
    deploy("feature/RST-3");
    for issue in ["RST-2", "RST-3"] {
        let r = run(benchctl().args(["sleep", issue]));
        assert_eq!(r.code, 0, "{}", r.all());
    }

    restart_engine();

    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let r = run(benchctl().args(["list", "--json"]));
        assert_eq!(r.code, 0, "{}", r.all());
        let rows = r.json();
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["issue"] == "RST-1")
            .cloned();
        let row = row.expect("list finds the bench by its labels after the restart");
        if row["state"] == "running" {
            if let Some(url) = row["url"].as_str() {
                if http_get(url).as_deref() == Some("survives\n") {
                    break url.to_string();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the bench did not come back: {row}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // the engine has restarted what it restarts (RST-1 answers): the sleeping ones stay down
    for issue in ["RST-2", "RST-3"] {
        assert_eq!(listed(issue)["state"], "sleeping", "{issue}");
        assert!(
            docker_lines(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=benchctl.issue={issue}")
            ])
            .is_empty(),
            "{issue} was started by the engine's restart"
        );
    }

    // the published port may have changed: `link` re-publishes the current address
    let tracker = FakeTracker::start(Auth::OAuth("rst-token-123"), Org::Org("o"));
    tracker.add_issue("RST-1");
    let r = run(benchctl()
        .args(["link", "RST-1"])
        .tracker(&tracker, "rst-token-123", "o"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(tracker.field("RST-1", "benchLink"), Some(url.into()));
}
