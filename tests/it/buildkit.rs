//! Builds through the engine's BuildKit (`--builder buildkit`) on the real engine: a cache
//! mount that a second issue's build of the same repository finds filled, benchctl's labels
//! written without a commit step, an unused stage skipped (the classic builder runs it and
//! fails), the progress display's numbered steps, and a flag the engine's built-in Dockerfile
//! frontend does not know refused with what to do.

use crate::support::*;

/// The app's Dockerfile with a "dependency step": a cache mount "downloaded" into when empty;
/// `/www/dep` says whether the step found the cache. `id` keeps the test's cache its own.
fn dockerfile(id: &str, before: &str) -> String {
    format!(
        "FROM scratch AS unused\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n\
         FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n{before}\
         RUN --mount=type=cache,id={id},target=/cache [\"/bin/busybox\", \"sh\", \"-c\", \
         \"if [ -f /cache/dep ]; then echo reused > /www/dep; else echo fetched > /www/dep; \
         echo deps > /cache/dep; fi\"]\nEXPOSE 8080\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    )
}

fn deploy(repo: &AppRepo, branch: &str, builder: &str) -> Run {
    run(benchctl()
        .args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"])
        .args(["--builder", builder]))
}

#[test]
fn buildkit_builds_share_cache_mounts_skip_unused_stages_and_label_without_a_commit() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["BKT-1", "BKT-2"]);
    let id = format!("benchctl-test-{:08x}", rand::random::<u32>());
    let repo = AppRepo::new();
    repo.write("Dockerfile", &dockerfile(&id, ""));
    repo.branch_with("feature/BKT-1", "one\n");

    let r = deploy(&repo, "feature/BKT-1", "buildkit");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all()
            .contains("builder: buildkit (--builder buildkit; Docker"),
        "{}",
        r.all()
    );
    // BuildKit's steps, numbered, with the unused stage never run
    assert!(
        r.all().contains("[stage-1 3/3] RUN --mount=type=cache"),
        "{}",
        r.all()
    );
    assert!(!r.all().contains("[unused "), "{}", r.all());
    assert!(
        !r.all().contains("Commit: the trailing configuration"),
        "{}",
        r.all()
    );
    let row = listed("BKT-1");
    let url = row["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&format!("{url}dep")).as_deref(), Some("fetched\n"));
    let image = row["image"].as_str().unwrap().to_string();
    let label = docker_lines(&[
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"benchctl.issue\"}}",
        &image,
    ]);
    assert_eq!(label, ["BKT-1"]);

    // another issue's branch of the repository: its dependency step finds the cache filled
    repo.write(
        "Dockerfile",
        &dockerfile(&id, "COPY www/index.html /changed\n"),
    );
    repo.branch_with("feature/BKT-2", "two\n");
    let r = deploy(&repo, "feature/BKT-2", "buildkit");
    assert_eq!(r.code, 0, "{}", r.all());
    let url = listed("BKT-2")["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&format!("{url}dep")).as_deref(), Some("reused\n"));

    // the classic builder runs every stage: the unused one fails it
    repo.write("www/index.html", "classic\n");
    repo.commit("classic");
    let r = deploy(&repo, "feature/BKT-2", "classic");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("builder: classic"), "{}", r.all());

    // a flag of newer frontends: refused with what to do
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY --link busybox /bin/busybox\nCMD [\"/bin/busybox\", \"true\"]\n",
    );
    repo.commit("COPY --link");
    let r = deploy(&repo, "feature/BKT-2", "buildkit");
    assert_eq!(r.code, 1, "{}", r.all());
    let err = r.stderr.clone();
    assert!(
        err.contains("Unknown flag: link") && err.contains("Docker 23"),
        "{}",
        r.all()
    );
    // the bench of the last good build still serves
    assert_eq!(http_get(&format!("{url}dep")).as_deref(), Some("reused\n"));
}

/// Processes on this machine (the engine's) running `sleep <secs>`: BuildKit's steps are not
/// containers of the engine, but processes under its runc.
fn sleeping(secs: u32) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {secs}")])
        .output()
        .expect("pgrep runs")
        .status
        .success()
}

#[test]
fn a_buildkit_build_stops_at_the_build_timeout() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["BKT-3"]);
    let repo = AppRepo::new();
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "COPY www /www\n",
            "COPY www /www\nRUN [\"/bin/busybox\", \"sleep\", \"100003\"]\n",
        ),
    );
    repo.branch_with("feature/BKT-3", "endless\n");
    let started = std::time::Instant::now();
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/BKT-3",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(["--builder", "buildkit", "--build-timeout", "4"]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("build timeout of 4 s"), "{}", r.all());
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    // the step had begun
    assert!(r.all().contains("sleep\", \"100003\"]"), "{}", r.all());
    // the engine stops the build once its connection is gone
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sleeping(100003) {
        assert!(std::time::Instant::now() < deadline, "the step still runs");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(issue_containers("BKT-3").is_empty());
}

const CANARY: &str = "bk-secret-canary-7d1e5f0a";

/// `deploy` of BKT-4's branch with BuildKit, forced, and the build secret `source`.
fn secret_deploy(repo: &AppRepo, source: &str) -> std::process::Command {
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/BKT-4",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ])
    .args(["--builder", "buildkit", "--force", "--build-secret", source]);
    cmd
}

#[test]
fn a_build_secret_reaches_the_build_and_nothing_else() {
    use sha2::Digest;
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["BKT-4"]);
    let repo = AppRepo::new();
    // the build proves it had the secret by its digest, which is no secret
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace(
            "COPY www /www\n",
            "COPY www /www\nRUN --mount=type=secret,id=tok,required=true [\"/bin/busybox\", \
             \"sh\", \"-c\", \"/bin/busybox sha256sum /run/secrets/tok | /bin/busybox cut -d' ' \
             -f1 > /www/sum\"]\n",
        ),
    );
    repo.branch_with("feature/BKT-4", "secret\n");
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), CANARY).unwrap();
    let want = format!("{}\n", hex::encode(sha2::Sha256::digest(CANARY.as_bytes())));
    for (source, env) in [
        ("id=tok,env=BKT_TOKEN".to_string(), Some(CANARY)),
        (format!("id=tok,src={}", secret_file.path().display()), None),
    ] {
        let mut cmd = secret_deploy(&repo, &source);
        if let Some(v) = env {
            cmd.env("BKT_TOKEN", v);
        }
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{source}: {}", r.all());
        assert!(!r.all().contains(CANARY), "{}", r.all());
        let row = listed("BKT-4");
        let url = row["url"].as_str().unwrap();
        assert_eq!(
            http_get(&format!("{url}sum")),
            Some(want.clone()),
            "{source}"
        );
        // in no layer's history, configuration or label
        let image = row["image"].as_str().unwrap();
        for args in [
            vec!["history", "--no-trunc", image],
            vec!["image", "inspect", image],
        ] {
            let out = docker_lines(&args).join("\n");
            assert!(!out.contains(CANARY), "{args:?}: {out}");
        }
    }
    // a secret the build requires and benchctl cannot read: the build fails, saying which
    // (a new commit, so that the step is not taken from the build cache)
    repo.write("www/index.html", "changed\n");
    repo.commit("changed");
    let r = run(secret_deploy(&repo, "id=tok,env=BKT_UNSET").env_remove("BKT_UNSET"));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("tok"), "{}", r.all());
}
