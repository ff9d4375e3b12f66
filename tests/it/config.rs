//! Settings from every layer (flags > environment > --config > the branch's benchctl.toml >
//! defaults), `benchctl config`, errors naming unknown keys and lines, and the bench's
//! environment: values from benchctl's environment or env files reach the container only.

use crate::support::*;
use serde_json::Value;

fn rows(v: &Value) -> std::collections::HashMap<String, (String, String)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                (
                    r["value"].as_str().unwrap().to_string(),
                    r["origin"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

const REPO_CONFIG: &str = r#"# the branch's settings
port = 8080
health-path = "/ok.html"
ready-timeout = 30

[limits]
memory = "64m"

[env]
FROM_REPO = "r"
OVERRIDE = "repo"

[build-args]
GREETING = "hello from the repo"
"#;

#[test]
fn config_shows_each_setting_and_where_it_came_from() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/CFG-1"]);
    repo.write("benchctl.toml", REPO_CONFIG);
    repo.commit("settings");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.toml");
    std::fs::write(&local, "ready-timeout = 40\n[env]\nOVERRIDE = \"local\"\n").unwrap();
    let env_file = dir.path().join("bench.env");
    std::fs::write(
        &env_file,
        "# secrets\nTOKEN_Y=file-canary-7d7d\n\nOVERRIDE=from-file\n",
    )
    .unwrap();

    let mut cmd = benchctl();
    cmd.args([
        "--json",
        "config",
        "feature/CFG-1",
        "--repo",
        &repo.path_str(),
    ])
    .arg("--config")
    .arg(&local)
    .args(["--memory", "128m", "--env", "SECRET_X", "--env", "PLAIN=p"])
    .arg("--env-file")
    .arg(&env_file)
    .env("SECRET_X", "env-canary-6c6c")
    .env("BENCHCTL_BENCH_FIELD", "envField");
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    let got = rows(&r.json());
    let at = |k: &str| {
        got.get(k)
            .unwrap_or_else(|| panic!("no {k}: {got:?}"))
            .clone()
    };
    assert_eq!(at("issue").0, "CFG-1");
    assert_eq!(at("port").0, "8080");
    assert!(
        at("port")
            .1
            .starts_with("benchctl.toml of branch feature/CFG-1 at "),
        "{:?}",
        at("port")
    );
    assert_eq!(
        at("ready-timeout"),
        ("40s".into(), format!("--config {}", local.display()))
    );
    assert_eq!(at("limits.memory"), ("128m".into(), "flag --memory".into()));
    assert_eq!(at("limits.cpus"), ("1".into(), "default".into()));
    assert_eq!(
        at("field"),
        ("envField".into(), "environment BENCHCTL_BENCH_FIELD".into())
    );
    assert_eq!(at("health-path").0, "/ok.html");
    assert_eq!(at("build-args.GREETING").0, "hello from the repo");
    assert_eq!(at("env.FROM_REPO").0, "r");
    // --env beats the env file, which beats --config, which beats the repository
    assert_eq!(
        at("env.OVERRIDE"),
        ("***".into(), format!("env file {}", env_file.display()))
    );
    assert_eq!(at("env.PLAIN"), ("p".into(), "flag --env".into()));
    assert_eq!(
        at("env.SECRET_X"),
        ("***".into(), "environment SECRET_X".into())
    );
    assert_eq!(
        at("env.TOKEN_Y"),
        ("***".into(), format!("env file {}", env_file.display()))
    );
    assert!(!r.all().contains("canary"), "{}", r.all());

    // the table form says the same
    let mut cmd = benchctl();
    cmd.args([
        "config",
        "feature/CFG-1",
        "--repo",
        &repo.path_str(),
        "--port",
        "9000",
    ]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    let port_line = r.stdout.lines().find(|l| l.starts_with("port ")).unwrap();
    assert!(
        port_line.contains("9000") && port_line.ends_with("flag --port"),
        "{port_line}"
    );
}

#[test]
fn unknown_keys_and_bad_values_name_the_file_line_and_key() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/CFG-2"]);
    repo.write(
        "benchctl.toml",
        "port = 8080\n\n[limits]\nmemroy = \"1g\"\n",
    );
    repo.commit("typo");
    let mut cmd = benchctl();
    cmd.args(["config", "feature/CFG-2", "--repo", &repo.path_str()]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("benchctl.toml of branch feature/CFG-2")
            && r.stderr.contains("line 4")
            && r.stderr.contains("memroy"),
        "{}",
        r.stderr
    );
    // a deploy refuses the same before any work
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/CFG-2",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("memroy"), "{}", r.stderr);
    assert!(issue_containers("CFG-2").is_empty());

    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.toml");
    std::fs::write(&local, "ready-timeout = \"soon\"\n").unwrap();
    let mut cmd = benchctl();
    cmd.arg("config").arg("--config").arg(&local);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains(&local.display().to_string()) && r.stderr.contains("line 1"),
        "{}",
        r.stderr
    );
    // a value that parses but is wrong names where it came from
    std::fs::write(&local, "[limits]\ncpus = 0.0\n").unwrap();
    let mut cmd = benchctl();
    cmd.arg("config").arg("--config").arg(&local);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("cpus") && r.stderr.contains("--config"),
        "{}",
        r.stderr
    );
    // --env NAME of an unset variable
    let mut cmd = benchctl();
    cmd.args(["config", "--env", "BENCHCTL_TEST_UNSET_VAR"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("BENCHCTL_TEST_UNSET_VAR is not set"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_deploy_uses_the_branchs_config_and_keeps_secret_values_out_of_labels_and_output() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CFG-3"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/CFG-3"]);
    // a build argument written into the image, and a --target stage (the last stage would fail)
    repo.write(
        "Dockerfile",
        "FROM scratch AS web\nCOPY busybox /bin/busybox\nCOPY www /www\nARG GREETING\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /www/arg.txt\"]\n\
         EXPOSE 8080\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n\
         FROM scratch AS broken\nCOPY does-not-exist /x\n",
    );
    repo.write("www/ok.html", "ok\n");
    repo.write(
        "benchctl.toml",
        "health-path = \"/ok.html\"\ntarget = \"web\"\n[build-args]\nGREETING = \"hello from the repo\"\n[env]\nMODE = \"bench\"\n",
    );
    repo.commit("configured");
    // the deploy, with API_KEY taken from benchctl's environment
    let deploy_with_key = |key: &str| {
        let mut cmd = benchctl();
        cmd.args([
            "--json",
            "deploy",
            "feature/CFG-3",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(["--env", "API_KEY", "--env", "PLAIN=visible"])
        .env("API_KEY", key);
        run(&mut cmd)
    };
    let r = deploy_with_key("deploy-canary-4b4b");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains("deploy-canary-4b4b"), "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        http_get(&format!("{url}arg.txt")).as_deref(),
        Some("hello from the repo\n")
    );
    let id = issue_containers("CFG-3")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let labels = docker_lines(&["inspect", "-f", "{{json .Config.Labels}}", &id]).join("");
    assert!(!labels.contains("deploy-canary"), "{labels}");
    let env = docker_lines(&["inspect", "-f", "{{json .Config.Env}}", &id]).join("");
    for want in ["API_KEY=deploy-canary-4b4b", "PLAIN=visible", "MODE=bench"] {
        assert!(env.contains(want), "{want} not in {env}");
    }
    // the same deploy again is a no-op; another value of the secret redeploys
    let r = deploy_with_key("deploy-canary-4b4b");
    assert_eq!(r.json()["action"], "unchanged", "{}", r.all());
    let r = deploy_with_key("deploy-canary-5a5a");
    assert_eq!(r.json()["action"], "deployed", "{}", r.all());
    // a health path that does not answer 2xx: not ready, the old bench stays
    let mut cmd = benchctl();
    cmd.args([
        "deploy",
        "feature/CFG-3",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ])
    .args(["--health-path", "/missing.html", "--ready-timeout", "2"]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("/missing.html answers 404"),
        "{}",
        r.stderr
    );
    assert_eq!(issue_containers("CFG-3").len(), 1);
    // the --target stage's image carries benchctl's labels, so teardown finds and removes it
    let labelled = docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=CFG-3"]);
    assert!(!labelled.is_empty());
    let r = run(benchctl().args(["teardown", "CFG-3", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        docker_lines(&["images", "-q", "benchctl/cfg-3"]).is_empty(),
        "images of CFG-3 left behind"
    );
}

#[test]
fn the_swarm_backend_on_an_engine_outside_a_swarm_says_how_to_make_one() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let state = docker_lines(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    let r = run(benchctl().args(["--backend", "swarm", "--json", "list"]));
    if state.first().map(String::as_str) == Some("active") {
        // a machine whose engine is a swarm manager: the backend simply works
        assert_eq!(r.code, 0, "{}", r.all());
    } else {
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.all().contains("docker swarm init"), "{}", r.all());
        assert!(r.all().contains("DOCKER_HOST"), "{}", r.all());
    }
}

/// A Compose file that includes another and extends a service of a third: `config` reads all
/// three from the branch, and a refused key in the included file is named with that file and
/// its line, exit 2.
#[test]
fn config_reads_included_and_extended_compose_files() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/INC-1"]);
    repo.write(
        "compose.yaml",
        "include: [db/compose.yaml]\nservices:\n  web:\n    extends: {file: common/base.yaml, \
         service: app}\n    ports: [\"8080\"]\n    depends_on: [db]\n",
    );
    repo.write(
        "common/base.yaml",
        "services:\n  app:\n    image: busybox\n    environment: {GREETING: hi}\n",
    );
    let db = "services:\n  db:\n    image: busybox\n    volumes: [\"./init:/init:ro\"]\n";
    repo.write("db/compose.yaml", db);
    repo.write("db/init/a.sql", "select 1;\n");
    repo.commit("include");
    let mut cmd = benchctl();
    cmd.args(["config", "feature/INC-1", "--repo", &repo.path_str()]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("db, web"), "{}", r.stdout);

    repo.write("db/compose.yaml", &format!("{db}    privileged: true\n"));
    repo.commit("privileged in the included file");
    let mut cmd = benchctl();
    cmd.args(["config", "feature/INC-1", "--repo", &repo.path_str()]);
    let r = run(&mut cmd);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("db/compose.yaml")
            && r.stderr.contains("line 5")
            && r.stderr.contains("services.db.privileged"),
        "{}",
        r.stderr
    );
}
