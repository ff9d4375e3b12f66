//! A branch stalling everyone else: a build that never ends is stopped at `--build-timeout`
//! (nothing of it left running, the running bench untouched) and serve keeps taking jobs; a
//! build runs under the bench's memory limit.

use crate::support::serve::*;
use crate::support::*;
use std::time::{Duration, Instant};

/// The busybox app whose build runs `sh -c <script>` after copying `www`.
fn dockerfile_running(script: &str) -> String {
    APP_DOCKERFILE.replace(
        "COPY www /www\n",
        &format!("COPY www /www\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"{script}\"]\n"),
    )
}

/// Containers on the engine running the endless build step `sleep <secs>`.
fn endless_steps(secs: u32) -> Vec<String> {
    docker_lines(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}"])
        .into_iter()
        .filter(|l| l.contains(&format!("sleep {secs}")))
        .collect()
}

fn wait_no_endless_steps(secs: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !endless_steps(secs).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            endless_steps(secs)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn an_endless_build_stops_at_the_build_timeout_and_the_running_bench_stays() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKT-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/ATKT-1", "before\n");
    let deploy = |extra: &[&str]| {
        run(benchctl()
            .args([
                "--json",
                "deploy",
                "feature/ATKT-1",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .args(extra))
    };
    let r = deploy(&[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let first = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&first).as_deref(), Some("before\n"));

    // the build's memory and CPU limits are the bench's (cgroup v1 paths, as on this engine)
    repo.write(
        "Dockerfile",
        &dockerfile_running(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /www/limit; \
             cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us > /www/quota",
        ),
    );
    repo.commit("read the build's limits");
    let r = deploy(&["--memory", "96m", "--cpus", "0.5"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        http_get(&format!("{url}limit")).as_deref(),
        Some(format!("{}\n", 96 << 20).as_str())
    );
    assert_eq!(http_get(&format!("{url}quota")).as_deref(), Some("50000\n"));

    repo.write("Dockerfile", &dockerfile_running("sleep 100001"));
    repo.commit("an endless build");
    let started = Instant::now();
    let r = deploy(&["--memory", "96m", "--cpus", "0.5", "--build-timeout", "4"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let err = r.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        err.contains("build timeout of 4 s") && err.contains("--build-timeout"),
        "{}",
        r.all()
    );
    wait_no_endless_steps(100001);
    // the running bench was not touched
    assert!(http_get(&format!("{url}limit")).is_some());
    assert_eq!(issue_containers("ATKT-1").len(), 1);
    let r = run(benchctl().args(["teardown", "ATKT-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn serve_keeps_taking_jobs_after_an_endless_build() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKT-2", "ATKT-3"]);
    let t = serve_tracker();
    t.add_issue("ATKT-2").add_issue("ATKT-3");
    let repo = AppRepo::new();
    let good = repo.branch_with("feature/ATKT-3", "still served\n");
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKT-2"]);
    repo.write("Dockerfile", &dockerfile_running("sleep 100002"));
    let endless = repo.commit("an endless build");
    let state = tempfile::tempdir().unwrap();
    // one job slot: a stalled build would hold it for good
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .arg("--max-parallel")
        .arg("1")
        .arg("--build-timeout")
        .arg("4")
        .start();
    let a = s.github(
        "push",
        "atkt-2",
        &github_push("feature/ATKT-2", &endless, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let a = s.github(
        "push",
        "atkt-3",
        &github_push("feature/ATKT-3", &good, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("ATKT-3 is linked", Duration::from_secs(90), |_| {
        bench_url(&t, "ATKT-3").is_some()
    });
    let log = s.log();
    assert!(log.contains("build timeout of 4 s"), "{log}");
    assert!(bench_url(&t, "ATKT-2").is_none());
    assert!(issue_containers("ATKT-2").is_empty());
    wait_no_endless_steps(100002);
    assert_eq!(
        http_get(&bench_url(&t, "ATKT-3").unwrap()).as_deref(),
        Some("still served\n")
    );
}

#[test]
fn a_job_that_keeps_killing_serve_is_set_aside_not_replayed() {
    use benchctl::server::store::Job;
    use benchctl::server::webhook::{Intent, Source};
    let _group = crate::support::group(module_path!());
    let t = serve_tracker();
    t.add_issue("ATKT-4");
    let state = tempfile::tempdir().unwrap();
    let queue = state.path().join("queue");
    std::fs::create_dir_all(&queue).unwrap();
    // begun three times, never ended: the process died in it each time
    let job = Job {
        seq: 7,
        source: Source::Tracker,
        delivery: String::new(),
        received_at: 0,
        attempts: 0,
        starts: 3,
        intent: Intent::Close {
            issue: "ATKT-4".into(),
        },
    };
    let file = queue.join(format!("{:020}.json", job.seq));
    std::fs::write(&file, serde_json::to_vec(&job).unwrap()).unwrap();
    let s = ServeSetup::new(Some(&t), state.path()).start();
    let log = s.log();
    assert!(log.contains("set aside") && log.contains("ATKT-4"), "{log}");
    assert_eq!(
        s.metric("benchctl_jobs_total{kind=\"close\",result=\"set_aside\"}"),
        1
    );
    assert!(!file.exists() && file.with_extension("set-aside").exists());
    assert_eq!(s.metric("benchctl_queue_depth"), 0);
}

#[test]
fn a_job_past_the_job_timeout_is_stopped_and_cleaned_up() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKT-5"]);
    let t = serve_tracker();
    t.add_issue("ATKT-5");
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-B", "feature/ATKT-5"]);
    repo.write("Dockerfile", &dockerfile_running("sleep 100003"));
    let slow = repo.commit("a build longer than the job may take");
    let state = tempfile::tempdir().unwrap();
    let s = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .arg("--job-timeout")
        .arg("5")
        .start();
    let a = s.github(
        "push",
        "atkt-5",
        &github_push("feature/ATKT-5", &slow, false),
    );
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until("the job failed", Duration::from_secs(60), |s| {
        s.finished_jobs("failed") >= 1
    });
    let log = s.log();
    assert!(log.contains("job timeout of 5 s"), "{log}");
    wait_no_endless_steps(100003);
    assert!(issue_containers("ATKT-5").is_empty());
    assert!(!issue_locked("ATKT-5"), "{log}");
    assert_eq!(s.metric("benchctl_queue_depth"), 0);
}
