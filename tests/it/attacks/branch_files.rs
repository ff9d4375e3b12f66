//! Issue 29, medium 4 and 5: what a branch's files cost to read is bounded. A Compose file
//! nesting defaults ten thousand deep (`${A:-${A:-...}}`, 60 KB) once overflowed the stack
//! and aborted serve with every job in it; now a signed push of such a branch fails its job
//! with a usage error (exit 2) and serve goes on. A file of 200 services and a 50 MB
//! `env_file` are refused quickly, with a small peak memory.

use crate::support::serve::*;
use crate::support::*;
use std::time::{Duration, Instant};

/// The nesting attack: `image: "${A:-` ten thousand times, `x`, `}` ten thousand times.
fn nested_compose() -> String {
    let n = 10_000;
    format!(
        "services:\n  web:\n    image: \"{}x{}\"\n    ports: [\"8080\"]\n",
        "${A:-".repeat(n),
        "}".repeat(n)
    )
}

#[test]
fn a_deeply_nested_compose_file_fails_its_job_and_serve_survives() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKF-1"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKF-1"]);
    repo.write("compose.yaml", &nested_compose());
    let commit = repo.commit("nested defaults");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(None, state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .start();
    let a = s.github(
        "push",
        "atkf-1",
        &github_push("feature/ATKF-1", &commit, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("the job failed", Duration::from_secs(60), |s| {
        s.finished_jobs("failed") >= 1
    });
    let log = s.log();
    assert!(log.contains("nested deeper than 32"), "{log}");
    // the job was not retried as if transient, and serve is still there
    assert_eq!(s.finished_jobs("failed"), 1, "{log}");
    assert_eq!(s.get("/healthz").status, 200, "{log}");
    assert!(!log.contains("overflow"), "{log}");
}

/// Runs `benchctl ARGS` and returns its run, its wall time and its peak resident memory (KiB).
fn measured(args: &[&str]) -> (Run, Duration, i64) {
    let started = Instant::now();
    let mut cmd = benchctl();
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    // reap it ourselves to read its rusage; the pipes are drained after it exits (its
    // output is small)
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; status and usage are valid for writes
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let elapsed = started.elapsed();
    use std::io::Read;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut child = child;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        Run {
            code,
            stdout,
            stderr,
        },
        elapsed,
        usage.ru_maxrss,
    )
}

#[test]
fn two_hundred_services_and_a_50_mb_env_file_are_refused_quickly_and_small() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKF-2"]);
    let mut many = String::from("services:\n");
    for i in 0..200 {
        many.push_str(&format!("  s{i}:\n    image: busybox\n"));
    }
    many.push_str("  web:\n    image: busybox\n    ports: [\"8080\"]\n");
    repo.write("compose.yaml", &many);
    repo.commit("200 services");
    let (r, took, rss) = measured(&["config", "feature/ATKF-2", "--repo", &repo.path_str()]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("201 services"), "{}", r.stderr);
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB");

    git(
        repo.path(),
        &["checkout", "-q", "-b", "feature/ATKF-3", "main"],
    );
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    image: busybox\n    ports: [\"8080\"]\n    env_file: big.env\n",
    );
    let line = format!("X={}\n", "y".repeat(1023));
    repo.write("big.env", &line.repeat(50 * 1024));
    repo.commit("a 50 MB env file");
    let (r, took, rss) = measured(&["config", "feature/ATKF-3", "--repo", &repo.path_str()]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("big.env") && r.stderr.contains("1024 KiB"),
        "{}",
        r.stderr
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(rss < 100 * 1024, "peak RSS {rss} KiB: the file was read");
}
