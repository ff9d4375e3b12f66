//! Shell and packaging: completion scripts that each shell accepts, the man page, the version
//! with the commit, NO_COLOR, and the CI systems' branch variables.

use crate::support::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `shell args...` with `script` on stdin or as a file; panics (never skips) when the
/// shell is missing: .ci/run installs bash, zsh and fish.
fn shell_accepts(shell: &str, args: &[&str], script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("completion");
    std::fs::write(&file, script).unwrap();
    let out = Command::new(shell)
        .args(args)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("{shell} is needed for this test (apt-get install {shell}): {e}")
        });
    assert!(
        out.status.success(),
        "{shell} rejects the completion script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn completions_for_each_shell_are_accepted_by_it() {
    let _group = crate::support::group(module_path!());
    for (shell, args) in [
        ("bash", vec!["-n"]),
        ("zsh", vec!["-n"]),
        ("fish", vec!["--no-execute"]),
    ] {
        let r = run(benchctl().args(["completions", shell]));
        assert_eq!(r.code, 0, "{}", r.all());
        for word in ["deploy", "teardown", "serve", "--url-template"] {
            assert!(r.stdout.contains(word), "{shell}: no {word}");
        }
        shell_accepts(shell, &args, &r.stdout);
    }
    // bash really completes the subcommands
    let r = run(benchctl().args(["completions", "bash"]));
    let script = format!(
        "{}\nCOMP_WORDS=(benchctl de); COMP_CWORD=1; _benchctl benchctl de benchctl; echo \"${{COMPREPLY[@]}}\"\n",
        r.stdout
    );
    let mut child = Command::new("bash")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deploy"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r = run(benchctl().args(["completions", "powershell"]));
    assert_eq!(r.code, 2);
}

#[test]
fn man_page_version_and_no_color() {
    let _group = crate::support::group(module_path!());
    let r = run(benchctl().arg("man"));
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with(".ie") || r.stdout.contains(".TH benchctl 1"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    for word in ["deploy", "serve", "completions"] {
        assert!(r.stdout.contains(word), "man page lacks {word}");
    }
    let r = run(benchctl().arg("--version"));
    assert_eq!(r.code, 0);
    let head = git(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &["rev-parse", "--short=12", "HEAD"],
    );
    assert!(
        r.stdout.starts_with(&format!(
            "benchctl {} (commit {head}",
            env!("CARGO_PKG_VERSION")
        )),
        "{} vs {head}",
        r.stdout
    );
    // errors and help carry no color codes with NO_COLOR, even when forced
    let r = run(benchctl()
        .args(["deploy", "--bogus"])
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1"));
    assert_eq!(r.code, 2);
    assert!(!r.all().contains('\u{1b}'), "{:?}", r.all());
}

#[test]
fn the_ci_systems_branch_variables_name_the_branch() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    repo.branch_with("feature/SHL-1-ci", "x\n");
    for var in [
        "GITHUB_HEAD_REF",
        "GITHUB_REF_NAME",
        "CI_COMMIT_REF_NAME",
        "BITBUCKET_BRANCH",
    ] {
        let r = run(benchctl()
            .args(["--json", "config", "--repo", &repo.path_str()])
            .env(var, "feature/SHL-1-ci"));
        assert_eq!(r.code, 0, "{var}: {}", r.all());
        let rows = r.json();
        let row = |k: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["key"] == k)
                .unwrap()
                .clone()
        };
        assert_eq!(row("branch")["value"], "feature/SHL-1-ci", "{var}");
        assert_eq!(row("branch")["origin"], "CI variable", "{var}");
        assert_eq!(row("issue")["value"], "SHL-1", "{var}");
    }
    // GitHub's pull request head wins over the ref name (a merge ref like `42/merge`)
    let r = run(benchctl()
        .args(["--json", "config", "--repo", &repo.path_str()])
        .env("GITHUB_REF_NAME", "42/merge")
        .env("GITHUB_HEAD_REF", "feature/SHL-1-ci"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("SHL-1"), "{}", r.stdout);
}

#[test]
fn ci_jobs_skip_branches_without_a_key_and_tear_down_by_branch() {
    let _group = crate::support::group(module_path!());
    let repo = AppRepo::new();
    // a push to main: nothing to do, successfully
    let r = run(benchctl()
        .args([
            "deploy",
            "--skip-no-issue",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .env("CI_COMMIT_REF_NAME", "main"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("branch `main` carries no issue key; nothing to do"),
        "{}",
        r.stdout
    );
    // without the flag it stays an error
    let r = run(benchctl()
        .args(["deploy", "--repo", &repo.path_str(), "--no-link"])
        .env("CI_COMMIT_REF_NAME", "main"));
    assert_eq!(r.code, 2, "{}", r.all());
    // teardown by branch (flag or CI variable); no bench: says so
    let r = run(benchctl().args(["teardown", "--branch", "feature/SHL-9-x", "--keep-link"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("SHL-9 has no bench"), "{}", r.stdout);
    let r = run(benchctl()
        .args(["--json", "teardown", "--keep-link", "--skip-no-issue"])
        .env("BITBUCKET_BRANCH", "main"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.json()["skipped"], true);
    let r = run(benchctl().args(["teardown"]));
    assert_eq!(r.code, 2, "{}", r.all());
}

/// The CI recipes in examples/ci parse as YAML and call benchctl the way these tests do.
#[test]
fn ci_recipes_are_valid_yaml_and_use_the_tested_commands() {
    let _group = crate::support::group(module_path!());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci");
    for name in [
        "github-actions.yml",
        "gitlab-ci.yml",
        "bitbucket-pipelines.yml",
    ] {
        let path = dir.join(name);
        let out = Command::new("python3")
            .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"])
            .arg(&path)
            .output()
            .expect("python3 with PyYAML is needed (apt-get install python3-yaml)");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("benchctl deploy --skip-no-issue"), "{name}");
        assert!(text.contains("benchctl teardown"), "{name}");
        // tokens travel in variables, never in a clone URL (it would end up in labels)
        assert!(
            !text.contains("@github.com") && !text.contains("gitlab-ci-token:"),
            "{name}"
        );
    }
}
