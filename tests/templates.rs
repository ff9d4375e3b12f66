//! Dockerfile templates: each one chosen by what a branch without a Dockerfile holds, named
//! with --template, overridden by a user's directory; the static one built and served for real
//! (its base image `nginx:1-alpine` is a local stand-in: FROM scratch + busybox httpd, since no
//! registry can be reached and the engine uses a local image before it tries to pull).

mod support;

use std::path::Path;
use support::*;

/// A repository whose branch `branch` holds `files` and no Dockerfile.
fn repo_with(branch: &str, files: &[(&str, &str)]) -> AppRepo {
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", branch]);
    git(repo.path(), &["rm", "-q", "Dockerfile"]);
    for (name, content) in files {
        repo.write(name, content);
    }
    repo.commit("no Dockerfile");
    repo
}

fn chosen(
    repo: &AppRepo,
    branch: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> serde_json::Value {
    let mut cmd = benchctl();
    cmd.args(["--json", "templates", branch, "--repo", &repo.path_str()])
        .args(extra)
        .envs(envs.iter().copied());
    let r = run(&mut cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    r.json()
}

#[test]
fn each_template_is_chosen_by_what_the_branch_holds() {
    for (i, (file, want)) in [
        ("Cargo.toml", "rust"),
        ("package.json", "node"),
        ("pyproject.toml", "python"),
        ("requirements.txt", "python"),
        ("go.mod", "go"),
        ("index.html", "static"),
    ]
    .into_iter()
    .enumerate()
    {
        let branch = format!("feature/TPL-{}", i + 1);
        let repo = repo_with(&branch, &[(file, "x\n")]);
        let v = chosen(&repo, &branch, &[], &[]);
        assert_eq!(v["chosen"]["name"], want, "{file}: {v}");
        assert!(
            v["chosen"]["reason"].as_str().unwrap().contains(file),
            "{v}"
        );
        assert_eq!(v["chosen"]["source"], "built in");
    }
    // a branch with its own Dockerfile uses it; --template overrides that
    let repo = AppRepo::new();
    repo.branch_with("feature/TPL-7", "x\n");
    let v = chosen(&repo, "feature/TPL-7", &[], &[]);
    assert!(v["chosen"].is_null(), "{v}");
    let v = chosen(&repo, "feature/TPL-7", &["--template", "node"], &[]);
    assert_eq!(v["chosen"]["name"], "node");
    assert!(
        v["chosen"]["reason"]
            .as_str()
            .unwrap()
            .contains("flag --template"),
        "{v}"
    );
    // nothing fits: no template, and the deploy says what to do
    let bare = repo_with("feature/TPL-8", &[("README.md", "hi\n")]);
    assert!(chosen(&bare, "feature/TPL-8", &[], &[])["chosen"].is_null());
    let r = run(benchctl().args([
        "deploy",
        "feature/TPL-8",
        "--repo",
        &bare.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 2, "{}", r.all());
    // refused before any work: nothing of TPL-8 on the engine, not even a result
    assert!(all_issue_containers("TPL-8").is_empty());
    assert!(
        r.stderr.contains("no template fits") && r.stderr.contains("--template"),
        "{}",
        r.stderr
    );
    // an unknown name is refused before any work
    let r = run(benchctl().args([
        "deploy",
        "feature/TPL-7",
        "--repo",
        &repo.path_str(),
        "--template",
        "cobol",
    ]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no template `cobol`"), "{}", r.stderr);

    // a user's directory overrides a built-in one and adds its own
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("static", "FROM scratch\nEXPOSE 80\n"),
        ("busybox", "FROM busybox:1\nEXPOSE 8080\n"),
    ] {
        std::fs::create_dir_all(dir.path().join("dockerfiles").join(name)).unwrap();
        std::fs::write(
            dir.path().join("dockerfiles").join(name).join("Dockerfile"),
            text,
        )
        .unwrap();
    }
    let envs = [("BENCHCTL_TEMPLATES_DIR", dir.path().to_str().unwrap())];
    let html = repo_with("feature/TPL-6", &[("index.html", "x\n")]);
    let v = chosen(&html, "feature/TPL-6", &[], &envs);
    assert_eq!(v["chosen"]["name"], "static");
    assert!(
        v["chosen"]["source"]
            .as_str()
            .unwrap()
            .starts_with(dir.path().to_str().unwrap()),
        "{v}"
    );
    let names: Vec<String> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["rust", "node", "python", "go", "static", "busybox"]);
    // the listing shows where each comes from, as a table too
    let mut cmd = benchctl();
    cmd.arg("templates").envs(envs);
    let r = run(&mut cmd);
    assert!(
        r.stdout.contains("busybox") && r.stdout.contains("--template only"),
        "{}",
        r.stdout
    );
}

/// The stand-in for `nginx:1-alpine`: busybox httpd serving nginx's web root on port 80.
struct StandIn(&'static str);

impl StandIn {
    fn build(tag: &'static str) -> StandIn {
        let existing = docker_lines(&["images", "-q", tag]);
        if !existing.is_empty() {
            let ours = docker_lines(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"benchctl.test-standin\"}}",
                tag,
            ]);
            assert_eq!(
                ours,
                vec!["true".to_string()],
                "{tag} exists on this engine and is not the test's stand-in; this test would shadow it (remove or retag it)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nLABEL benchctl.test-standin=true\n\
             CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/usr/share/nginx/html\"]\n",
        )
        .unwrap();
        let out = std::process::Command::new("docker")
            .args(["build", "-q", "-t", tag])
            .arg(dir.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        StandIn(tag)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rmi", self.0])
            .output();
    }
}

#[test]
fn the_static_template_is_built_and_served_for_real() {
    require_docker();
    let _c = Cleanup::issues(&["TPL-9"]);
    let _base = StandIn::build("nginx:1-alpine");
    let repo = repo_with(
        "feature/TPL-9",
        &[
            ("index.html", "<h1>static bench</h1>\n"),
            ("css/site.css", "h1 {}\n"),
        ],
    );
    // the app's busybox and www are in the repository too; they are served as files
    let r = run(benchctl().args([
        "deploy",
        "feature/TPL-9",
        "--repo",
        &repo.path_str(),
        "--no-link",
        "--json",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("<h1>static bench</h1>\n"));
    assert_eq!(
        http_get(&format!("{url}css/site.css")).as_deref(),
        Some("h1 {}\n")
    );
    // plain output says which template and why
    repo.write("index.html", "<h1>again</h1>\n");
    repo.commit("again");
    let r = run(benchctl().args([
        "deploy",
        "feature/TPL-9",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("building with template `static` (the branch has no Dockerfile and has index.html; built in)"),
        "{}",
        r.stderr
    );
    let list = run(benchctl().args(["--json", "list"])).json();
    let url = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["issue"] == "TPL-9")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(http_get(&url).as_deref(), Some("<h1>again</h1>\n"));
    // nothing was written into the repository
    assert!(!Path::new(&repo.path().join("Dockerfile")).exists());
}
