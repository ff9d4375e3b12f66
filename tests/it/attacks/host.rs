//! Defaults that protect the host: a bench runs without new privileges and with only the
//! capabilities a web app needs (the operator adds exceptions with `--cap-add`); state and
//! cache directories are private (0700) and never a shared `/tmp` path.

use crate::support::*;
use std::os::unix::fs::PermissionsExt;

fn bench_id(issue: &str) -> String {
    issue_containers(issue)[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_bench_gains_no_privileges_and_keeps_only_a_web_apps_capabilities() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKH-1"]);
    let repo = AppRepo::new();
    repo.branch_with("feature/ATKH-1", "caps\n");
    let deploy = |extra: &[&str]| {
        let r = run(benchctl()
            .args([
                "deploy",
                "feature/ATKH-1",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .args(extra));
        assert_eq!(r.code, 0, "{}", r.all());
    };
    deploy(&[]);
    let id = bench_id("ATKH-1");
    let status = docker_lines(&["exec", &id, "/bin/busybox", "cat", "/proc/1/status"]);
    assert!(status.iter().any(|l| l == "NoNewPrivs:\t1"), "{status:?}");
    // Docker's default set would allow this: a device node for the host's memory
    assert!(
        !can_make_device_node(&id),
        "a bench could make a device node"
    );
    let caps = docker_lines(&[
        "inspect",
        "-f",
        "{{json .HostConfig.CapAdd}} {{json .HostConfig.CapDrop}}",
        &id,
    ]);
    assert!(
        caps[0].contains("NET_BIND_SERVICE") && caps[0].contains("[\"ALL\"]"),
        "{caps:?}"
    );
    assert!(
        !caps[0].contains("NET_RAW") && !caps[0].contains("MKNOD"),
        "{caps:?}"
    );

    // the operator's exception
    deploy(&["--cap-add", "mknod"]);
    let id = bench_id("ATKH-1");
    assert!(can_make_device_node(&id), "--cap-add MKNOD was not applied");
    let r = run(benchctl().args([
        "deploy",
        "feature/ATKH-1",
        "--repo",
        &repo.path_str(),
        "--cap-add",
        "NET RAW",
    ]));
    assert_eq!(r.code, 2, "{}", r.all());
    let r = run(benchctl().args(["teardown", "ATKH-1", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn state_and_cache_directories_are_private_and_never_a_shared_tmp_path() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let base = tempfile::tempdir().unwrap();
    // created 0700, and made so when they exist with looser modes
    let cache = base.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run(benchctl()
        .args(["gc", "--dry-run"])
        .env("BENCHCTL_CACHE_DIR", &cache));
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", r.all());
    let home = base.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let r = run(benchctl()
        .args(["gc", "--dry-run"])
        .env_remove("BENCHCTL_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", &home));
    assert_eq!(r.code, 0, "{}", r.all());
    let made = home.join(".cache/benchctl");
    assert_eq!(
        std::fs::metadata(&made).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // without HOME and without a flag: a clear error, nothing under /tmp
    let before: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let r = run(benchctl()
        .args(["gc", "--dry-run"])
        .env_remove("BENCHCTL_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("HOME") && r.stderr.contains("--cache-dir"),
        "{}",
        r.stderr
    );
    let r = run(benchctl()
        .args(["serve", "--listen", "127.0.0.1:1"])
        .env_remove("BENCHCTL_STATE_DIR")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME"));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--state-dir"), "{}", r.stderr);
    // the paths earlier versions fell back to
    for name in ["benchctl-cache", "benchctl-state"] {
        let n = std::ffi::OsString::from(name);
        assert!(
            before.contains(&n) || !std::env::temp_dir().join(name).exists(),
            "{name} appeared in the temporary directory"
        );
    }
}
