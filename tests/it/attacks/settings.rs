//! A branch's `benchctl.toml` overriding what the operator owns: the Tracker field, the bench's
//! address, the issue pattern, limits past the operator's ceilings, numbers made to overflow.
//! Each is refused with exit 2 naming the file, the commit, the line and the key, before any
//! work; within the ceilings a branch's own values apply.

use crate::support::*;

fn branch_with_config(repo: &AppRepo, branch: &str, config: &str) -> String {
    git(repo.path(), &["checkout", "-q", "-B", branch]);
    repo.write("benchctl.toml", config);
    repo.commit("settings")
}

#[test]
fn a_branch_cannot_set_what_the_operator_owns_or_pass_the_ceilings() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKS-1"]);
    let repo = AppRepo::new();
    let branch = "feature/ATKS-1";
    for (config, line, names) in [
        // the issue's description overwritten by every deploy, erased by teardown
        (
            "port = 8080\nfield = \"description\"\n",
            2,
            vec!["`field`", "--field"],
        ),
        // another host name behind the shared proxy
        (
            "url-template = \"http://proj-2.bench.example.com\"\n",
            1,
            vec!["`url-template`", "--url-template"],
        ),
        (
            "\nissue-pattern = \"(ATKS-2)\"\n",
            2,
            vec!["`issue-pattern`"],
        ),
        ("max-memory = \"1000g\"\n", 1, vec!["`max-memory`"]),
        ("backend = \"swarm\"\n", 1, vec!["`backend`"]),
        // routing is flags only: not a key a file may hold
        ("router = \"traefik\"\n", 1, vec!["`router`"]),
        ("\nnetwork = \"host\"\n", 2, vec!["`network`"]),
        // past the ceilings
        (
            "[limits]\nmemory = \"1000g\"\n",
            0,
            vec!["limits.memory", "--max-memory 512m", "BENCHCTL_MAX_MEMORY"],
        ),
        (
            "[limits]\ncpus = 1024\n",
            0,
            vec!["limits.cpus", "--max-cpus 1"],
        ),
        (
            "[limits]\npids = 100000\n",
            0,
            vec!["limits.pids", "--max-pids 256"],
        ),
        (
            "ready-timeout = 601\n",
            0,
            vec!["ready-timeout", "--max-ready-timeout 600"],
        ),
        // numbers that once overflowed an instant and killed serve's worker
        ("ready-timeout = 18446744073709551615\n", 1, vec![]),
        (
            "ready-timeout = 9223372036854775807\n",
            1,
            vec!["ready-timeout"],
        ),
        ("[limits]\nmemory = \"1e300g\"\n", 0, vec!["1e300g"]),
    ] {
        let commit = branch_with_config(&repo, branch, config);
        let r = run(benchctl().args(["deploy", branch, "--repo", &repo.path_str()]));
        assert_eq!(r.code, 2, "{config}: {}", r.all());
        let err = r.stderr.clone();
        assert!(
            err.contains("benchctl.toml") && err.contains(&commit[..7]),
            "{config}: {err}"
        );
        if line > 0 {
            assert!(err.contains(&format!("line {line}")), "{config}: {err}");
        }
        for n in names {
            assert!(err.contains(n), "{config}: {n} not in {err}");
        }
        // before any work: nothing built, nothing started
        assert!(
            !err.contains("Build") && issue_containers("ATKS-1").is_empty(),
            "{config}: {}",
            r.all()
        );
    }

    // within the ceilings the branch's values apply; the operator raises a ceiling
    branch_with_config(
        &repo,
        branch,
        "ready-timeout = 601\n[limits]\ncpus = 0.5\nmemory = \"64m\"\n",
    );
    let r = run(benchctl()
        .args(["--json", "deploy", branch, "--repo", &repo.path_str()])
        .env("BENCHCTL_MAX_READY_TIMEOUT", "700"));
    assert_eq!(r.code, 0, "{}", r.all());
    let id = issue_containers("ATKS-1")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let limits = docker_lines(&[
        "inspect",
        "-f",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
        &id,
    ]);
    assert_eq!(limits, vec![format!("500000000 {}", 64 << 20)]);

    // `config` shows the ceilings and who set them
    let r = run(benchctl()
        .args(["--json", "config"])
        .env("BENCHCTL_MAX_READY_TIMEOUT", "700"));
    assert_eq!(r.code, 0, "{}", r.all());
    let rows = r.json();
    let row = |key: &str| {
        rows["settings"]
            .as_array()
            .or_else(|| rows.as_array())
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("{key} not in {rows}"))
            .clone()
    };
    assert_eq!(row("max-ready-timeout")["value"], "700s");
    assert!(row("max-ready-timeout")["origin"]
        .as_str()
        .unwrap()
        .contains("BENCHCTL_MAX_READY_TIMEOUT"));
    assert_eq!(row("max-memory")["value"], "512m");
    assert_eq!(row("max-memory")["origin"], "default");

    // an operator's flag out of range is refused by the parser, not wrapped
    for (flag, v) in [
        ("--lock-timeout", "18446744073709551615"),
        ("--ready-timeout", "31536001"),
        ("--memory", "1e300g"),
    ] {
        let r = run(benchctl().args(["deploy", branch, "--repo", &repo.path_str(), flag, v]));
        assert_eq!(r.code, 2, "{flag} {v}: {}", r.all());
    }
    let r = run(benchctl().args(["teardown", "ATKS-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
}
