//! Dockerfile templates: each one chosen by what a branch without a Dockerfile holds, named
//! with --template, overridden by a user's directory; the static one built and served for real
//! (its base image `nginx:1-alpine` is a local stand-in: FROM scratch + busybox httpd, since no
//! registry can be reached and the engine uses a local image before it tries to pull).

use crate::support::*;
use std::path::Path;

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
    let _group = crate::support::group(module_path!());
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

/// A local stand-in for an official base image: FROM scratch + busybox (its applets installed
/// in /bin), plus `tools` (path, shell script), labelled so the test never shadows a real image.
struct StandIn(&'static str);

impl StandIn {
    fn build(tag: &'static str, tools: &[(&str, &str)], cmd: Option<&str>) -> StandIn {
        let existing = docker_lines(&["images", "-q", tag]);
        if !existing.is_empty() {
            let ours = docker_lines(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"org.example.benchctl-test-standin\"}}",
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
        let mut dockerfile = String::from(
            "FROM scratch\nCOPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             ENV PATH=/usr/local/bin:/usr/bin:/bin\nLABEL org.example.benchctl-test-standin=true\n",
        );
        for (i, (path, script)) in tools.iter().enumerate() {
            std::fs::write(dir.path().join(format!("tool{i}")), script).unwrap();
            dockerfile.push_str(&format!("COPY tool{i} {path}\nRUN chmod +x {path}\n"));
        }
        if let Some(cmd) = cmd {
            dockerfile.push_str(&format!("CMD {cmd}\n"));
        }
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
        docker_build(dir.path(), tag, &[]);
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

/// A shell script that serves `text` on $PORT (what the stand-in toolchains "build").
fn server_script(text: &str) -> String {
    format!(
        "#!/bin/sh\nmkdir -p /tmp/www && echo '{text}' > /tmp/www/index.html\n\
         exec httpd -f -p \"${{PORT:-8080}}\" -h /tmp/www\n"
    )
}

/// The rust, node, python and go templates, built for real on stand-ins of their base images
/// whose toolchains (`cargo`, `npm`, `pip`/`python`, `go`) are scripts: every instruction of
/// each template runs, and the bench it gives answers on the port the template exposes.
#[test]
fn the_language_templates_build_and_run_on_stand_in_bases() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["TPL-11", "TPL-12", "TPL-13", "TPL-14"]);
    let cargo = format!(
        "#!/bin/sh\n# cargo install --locked --path . --root /out\n[ \"$1\" = install ] || exit 1\n\
         test -f Cargo.toml || exit 1\nmkdir -p /out/bin\ncat > /out/bin/app <<'EOF'\n{}EOF\n\
         chmod +x /out/bin/app\n",
        server_script("rust bench")
    );
    let npm = "#!/bin/sh\ncase \"$1\" in ci|install) test -f package.json ;; start) exec /srv/serve ;; *) exit 1 ;; esac\n";
    let go = format!(
        "#!/bin/sh\n# go build -o /app .\n[ \"$1\" = build ] && [ \"$2\" = -o ] || exit 1\n\
         test -f go.mod || exit 1\ncat > \"$3\" <<'EOF'\n{}EOF\nchmod +x \"$3\"\n",
        server_script("go bench")
    );
    let python = "#!/bin/sh\n[ \"$1\" = app.py ] && test -f app.py && exec /srv/serve\nexit 1\n";
    let pip = "#!/bin/sh\n[ \"$1\" = install ] && test -f requirements.txt\n";
    let _bases = [
        StandIn::build(
            "rust:1-slim-bookworm",
            &[("/usr/local/bin/cargo", &cargo)],
            None,
        ),
        StandIn::build("debian:bookworm-slim", &[], None),
        StandIn::build(
            "node:20-alpine",
            &[
                ("/usr/local/bin/npm", npm),
                ("/srv/serve", &server_script("node bench")),
            ],
            None,
        ),
        StandIn::build(
            "python:3.12-slim",
            &[
                ("/usr/local/bin/python", python),
                ("/usr/local/bin/pip", pip),
                ("/srv/serve", &server_script("python bench")),
            ],
            None,
        ),
        StandIn::build("golang:1.22-alpine", &[("/usr/local/bin/go", &go)], None),
        StandIn::build("alpine:3.20", &[], None),
    ];
    for (issue, file, want) in [
        ("TPL-11", "Cargo.toml", "rust bench"),
        ("TPL-12", "package.json", "node bench"),
        ("TPL-13", "requirements.txt", "python bench"),
        ("TPL-14", "go.mod", "go bench"),
    ] {
        let branch = format!("feature/{issue}");
        let mut files = vec![(file, "x\n")];
        if file == "requirements.txt" {
            files.push(("app.py", "print('hi')\n"));
        }
        let repo = repo_with(&branch, &files);
        let r = run(benchctl().args([
            "--json",
            "deploy",
            &branch,
            "--repo",
            &repo.path_str(),
            "--no-link",
        ]));
        assert_eq!(r.code, 0, "{issue} ({file}): {}", r.all());
        let url = r.json()["url"].as_str().unwrap().to_string();
        assert_eq!(
            http_get(&url).as_deref(),
            Some(format!("{want}\n").as_str()),
            "{issue}"
        );
    }
}

#[test]
fn the_static_template_is_built_and_served_for_real() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["TPL-9"]);
    let _base = StandIn::build(
        "nginx:1-alpine",
        &[],
        Some("[\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/usr/share/nginx/html\"]"),
    );
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
    let url = listed("TPL-9")["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("<h1>again</h1>\n"));
    // nothing was written into the repository
    assert!(!Path::new(&repo.path().join("Dockerfile")).exists());
}
