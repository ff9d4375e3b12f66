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

/// `deploy` of BKT-4's branch with BuildKit, forced, and the build secret `source` (none:
/// the branch's benchctl.toml names it).
fn secret_deploy(repo: &AppRepo, source: Option<&str>) -> std::process::Command {
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/BKT-4",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ])
    .args(["--builder", "buildkit", "--force"]);
    if let Some(source) = source {
        cmd.args(["--build-secret", source]);
    }
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
        (Some("id=tok,env=BKT_TOKEN".to_string()), Some(CANARY)),
        (
            Some(format!("id=tok,src={}", secret_file.path().display())),
            None,
        ),
        // named by the branch, from a variable the operator allows
        (None, Some(CANARY)),
    ] {
        let mut cmd = secret_deploy(&repo, source.as_deref());
        if let Some(v) = env {
            cmd.env("BKT_TOKEN", v);
        }
        if source.is_none() {
            repo.write("benchctl.toml", "[build-secrets]\ntok = \"BKT_TOKEN\"\n");
            repo.commit("the branch names its build secret");
            cmd.env("BENCHCTL_BUILD_SECRET_VARS", "NPM_TOKEN, BKT_TOKEN");
        }
        let source = source.unwrap_or_else(|| "benchctl.toml".into());
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
    let r = run(secret_deploy(&repo, Some("id=tok,env=BKT_UNSET")).env_remove("BKT_UNSET"));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("tok"), "{}", r.all());

    // a branch naming a variable the operator does not allow (one of benchctl's own tokens, or
    // any without --build-secret-vars): refused before anything is built
    repo.write(
        "benchctl.toml",
        "[build-secrets]\ntok = \"BENCHCTL_TRACKER_TOKEN\"\n",
    );
    repo.commit("the branch asks for the Tracker token");
    for allowed in ["BKT_TOKEN", ""] {
        let r = run(secret_deploy(&repo, None)
            .env("BENCHCTL_TRACKER_TOKEN", CANARY)
            .env("BENCHCTL_BUILD_SECRET_VARS", allowed));
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(
            r.stderr
                .contains("build secret `tok` names benchctl's variable `BENCHCTL_TRACKER_TOKEN`")
                && r.stderr.contains("build-secrets.tok")
                && r.stderr.contains("BENCHCTL_BUILD_SECRET_VARS"),
            "{}",
            r.all()
        );
        assert!(
            !r.all().contains(CANARY) && !r.all().contains("building"),
            "{}",
            r.all()
        );
    }
}

/// Sets the engine's BuildKit cgroup (cgroup v1 or v2, cgroupfs driver) to a memory and pids
/// bound, and puts the values it found back when dropped.
struct BuildKitBound(Vec<(String, String)>);

impl BuildKitBound {
    fn set(memory: u64, pids: u64) -> BuildKitBound {
        let v1 = std::path::Path::new("/sys/fs/cgroup/memory/docker/buildkit").exists();
        // lowering: the memory limit before memory+swap; raising back: the other way round
        let files: Vec<(&str, String)> = match v1 {
            true => vec![
                (
                    "/sys/fs/cgroup/memory/docker/buildkit/memory.limit_in_bytes",
                    memory.to_string(),
                ),
                (
                    "/sys/fs/cgroup/memory/docker/buildkit/memory.memsw.limit_in_bytes",
                    memory.to_string(),
                ),
                (
                    "/sys/fs/cgroup/pids/docker/buildkit/pids.max",
                    pids.to_string(),
                ),
            ],
            false => vec![
                (
                    "/sys/fs/cgroup/docker/buildkit/memory.max",
                    memory.to_string(),
                ),
                ("/sys/fs/cgroup/docker/buildkit/pids.max", pids.to_string()),
            ],
        };
        let mut found = Vec::new();
        for (file, value) in files {
            if file.ends_with("memsw.limit_in_bytes") && !std::path::Path::new(file).exists() {
                continue; // no swap accounting on this host
            }
            let old = std::fs::read_to_string(file).unwrap_or_else(|e| {
                panic!("the engine's BuildKit cgroup {file} (this test needs the engine's host, as root, with the cgroupfs driver): {e}")
            });
            std::fs::write(file, &value)
                .unwrap_or_else(|e| panic!("writing {value} to {file}: {e}"));
            found.push((file.to_string(), old.trim().to_string()));
        }
        BuildKitBound(found)
    }
}

impl Drop for BuildKitBound {
    fn drop(&mut self) {
        for (file, old) in self.0.iter().rev() {
            // v1 writes "no limit" as a large number it does not take back: -1 says the same
            let old = match old.parse::<u64>() {
                Ok(n) if n >= 1 << 62 => "-1",
                _ => old.as_str(),
            };
            if let Err(e) = std::fs::write(file, old) {
                eprintln!("could not put {old} back in {file}: {e}");
            }
        }
    }
}

#[test]
fn the_default_builds_with_buildkit_where_the_host_bounds_its_steps() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["BKT-5", "BKT-6"]);
    let id = format!("benchctl-test-{:08x}", rand::random::<u32>());
    let repo = AppRepo::new();
    // without the unused stage: the classic builder gets as far as the cache mount
    let only_used = |df: String| df[df.find("FROM scratch\n").unwrap()..].to_string();
    repo.write("Dockerfile", &only_used(dockerfile(&id, "")));
    repo.branch_with("feature/BKT-5", "five\n");
    let default = |branch: &str| {
        run(benchctl()
            .args(["deploy", branch, "--repo", &repo.path_str(), "--no-link"])
            .env("BENCHCTL_BUILDER", "auto"))
    };

    // unbounded (as the engine starts): the classic builder, saying why, and what to do
    let r = default("feature/BKT-5");
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all()
            .contains("builder: classic (--builder auto, the default: Docker")
            && r.all()
                .contains("has BuildKit, but the engine's BuildKit steps have no memory bound")
            && r.all().contains("README: Builders"),
        "{}",
        r.all()
    );
    assert!(
        r.stderr.contains("--mount option requires BuildKit")
            && r.stderr
                .contains("choose --builder buildkit for branches you trust"),
        "{}",
        r.all()
    );

    let bound = BuildKitBound::set(384 << 20, 512);
    // bounded: BuildKit, and the bound holds a step that takes more memory
    let r = default("feature/BKT-5");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all()
            .contains("builder: buildkit (--builder auto, the default; Docker")
            && r.all()
                .contains("docker/buildkit: memory 384 MiB, pids 512)"),
        "{}",
        r.all()
    );
    let url = listed("BKT-5")["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&format!("{url}dep")).as_deref(), Some("fetched\n"));

    repo.write(
        "Dockerfile",
        &only_used(dockerfile(
            &id,
            "RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"dd\", \"if=/dev/zero\", \
             \"of=/dev/null\", \"bs=600M\", \"count=1\"]\n",
        )),
    );
    repo.branch_with("feature/BKT-6", "six\n");
    let r = default("feature/BKT-6");
    drop(bound);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("exit code: 137"), "{}", r.all());
    assert!(!r.all().contains("panicked"), "{}", r.all());
}
