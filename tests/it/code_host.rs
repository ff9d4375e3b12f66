//! Commit statuses on the code hosts, against the fakes of `support/code_hosts/` (which
//! check paths, methods, auth headers and body shapes against the platforms' references):
//! the states of a success, a failure and a teardown, GitHub's fallback to commit statuses,
//! GitLab and both Bitbuckets, and a host answering 401, 500 or nothing, which never fails
//! the deploy.

use crate::support::code_hosts::{FakeCodeHost, Platform};
use crate::support::*;
use serde_json::Value;

/// `benchctl deploy BRANCH --json` of `repo` for `issue` with `host`'s flags and token, and
/// `extra` arguments.
fn deploy_with(
    repo: &AppRepo,
    branch: &str,
    issue: &str,
    host: &FakeCodeHost,
    extra: &[&str],
) -> (Run, Value) {
    let r = run(benchctl()
        .args([
            "deploy",
            branch,
            "--issue",
            issue,
            "--repo",
            &repo.path_str(),
        ])
        .args(["--no-link", "--json"])
        .args(extra)
        .args(host.args())
        .env(host.token_var(), host.token)
        .env("BENCHCTL_CODE_HOST_TIMEOUT", "1")
        .env("BENCHCTL_DASHBOARD_URL", "https://dash.example.com/"));
    let v = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r, v)
}

fn deploy(repo: &AppRepo, branch: &str, issue: &str, host: &FakeCodeHost) -> (Run, Value) {
    deploy_with(repo, branch, issue, host, &[])
}

fn teardown(issue: &str, host: &FakeCodeHost) -> (Run, Value) {
    let r = run(benchctl()
        .args(["teardown", issue, "--keep-link", "--json"])
        .args(host.args())
        .env(host.token_var(), host.token));
    let v = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    (r, v)
}

fn states(d: &crate::support::code_hosts::Deployment) -> Vec<&str> {
    d.statuses.iter().map(|(s, _)| s.as_str()).collect()
}

#[test]
fn a_github_deployment_follows_a_deploy_a_failure_and_a_teardown() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-1"]);
    let gh = FakeCodeHost::start(Platform::GitHub);
    let repo = AppRepo::new();
    let first = repo.branch_with("feature/CHS-1", "one\n");

    let (r, v) = deploy(&repo, "feature/CHS-1", "CHS-1", &gh);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(v["code_host"]["state"], "success", "{}", r.all());
    assert_eq!(v["code_host"]["host"], "github");
    let url = v["url"].as_str().unwrap().to_string();
    let d = gh.deployments();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (d[0].sha.as_str(), d[0].environment.as_str()),
        (first.as_str(), "CHS-1")
    );
    assert_eq!(states(&d[0]), ["in_progress", "success"]);
    assert_eq!(d[0].statuses[1].1.as_deref(), Some(url.as_str()));

    // a no-op tells nothing new
    let before = gh.requests().len();
    let (r, v) = deploy(&repo, "feature/CHS-1", "CHS-1", &gh);
    assert_eq!(
        (r.code, v["action"].as_str()),
        (0, Some("unchanged")),
        "{}",
        r.all()
    );
    assert_eq!(gh.requests().len(), before);

    // a commit that does not build: a new deployment, failed, with the reason
    repo.write("Dockerfile", "FROM scratch\nCOPY missing-file /x\n");
    let broken = repo.commit("broken");
    let (r, v) = deploy(&repo, "feature/CHS-1", "CHS-1", &gh);
    assert_eq!(r.code, 1, "{}", r.all());
    // the error's JSON says what the code host was told too
    assert_eq!(v["exit_code"], 1, "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains("missing-file"),
        "{v}"
    );
    assert_eq!(v["code_host"]["state"], "failure", "{v}");
    let d = gh.deployments();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[1].sha, broken);
    assert_eq!(states(&d[1]), ["in_progress", "failure"]);
    let failure = gh
        .requests()
        .into_iter()
        .rev()
        .find(|q| q.body["state"] == "failure")
        .unwrap();
    // the reason can be read on the dashboard's page of the bench
    assert_eq!(
        failure.body["log_url"], "https://dash.example.com/bench/CHS-1",
        "{:?}",
        failure.body
    );
    let description = failure.body["description"].as_str().unwrap();
    assert!(description.contains("missing-file"), "{description}");
    assert!(description.chars().count() <= 140);

    // teardown: every deployment of the issue's environment (listed by it) is inactive
    let (r, v) = teardown("CHS-1", &gh);
    assert!(
        gh.requests().iter().any(|q| q.method == "GET"
            && q.path == "/repos/acme/shop/deployments?environment=CHS-1&per_page=100"),
        "{:?}",
        gh.requests()
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(v["code_host"]["state"], "inactive", "{}", r.all());
    for d in gh.deployments() {
        assert_eq!(
            d.statuses.last().map(|s| s.0.as_str()),
            Some("inactive"),
            "{d:?}"
        );
    }
    // the token went nowhere but the header
    assert!(!r.all().contains(gh.token));
}

#[test]
fn github_without_the_deployments_permission_gets_commit_statuses() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-2"]);
    let gh = FakeCodeHost::start(Platform::GitHub);
    gh.refuse_deployments();
    let repo = AppRepo::new();
    let head = repo.branch_with("feature/CHS-2", "two\n");
    let (r, v) = deploy(&repo, "feature/CHS-2", "CHS-2", &gh);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(v["code_host"]["state"], "success", "{}", r.all());
    let s = gh.statuses();
    let got: Vec<(&str, &str)> = s
        .iter()
        .map(|(sha, st, _, _)| (sha.as_str(), st.as_str()))
        .collect();
    assert_eq!(
        got,
        [(head.as_str(), "pending"), (head.as_str(), "success")]
    );
    assert_eq!(s[1].2.as_deref(), v["url"].as_str());
    let context: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|q| q.path.contains("/statuses/"))
        .map(|q| q.body["context"].clone())
        .collect();
    assert!(context.iter().all(|c| c == "benchctl"), "{context:?}");
}

#[test]
fn gitlab_and_both_bitbuckets_get_a_commit_status() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-3"]);
    let repo = AppRepo::new();
    let head = repo.branch_with("feature/CHS-3", "three\n");
    for (platform, pending, success, removed) in [
        (Platform::GitLab, "running", "success", None),
        (
            Platform::BitbucketCloud,
            "INPROGRESS",
            "SUCCESSFUL",
            Some("STOPPED"),
        ),
        (Platform::BitbucketDc, "INPROGRESS", "SUCCESSFUL", None),
    ] {
        let host = FakeCodeHost::start(platform);
        let (r, v) = deploy(&repo, "feature/CHS-3", "CHS-3", &host);
        assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        assert_eq!(
            v["code_host"]["state"],
            "success",
            "{platform:?}: {}",
            r.all()
        );
        if platform == Platform::GitLab {
            assert_eq!(gitlab_recipe_url(&r.stdout), v["url"].as_str().unwrap());
        }
        let (r, v) = teardown("CHS-3", &host);
        assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        let s = host.statuses();
        let mut want = vec![pending, success];
        want.extend(removed);
        let got: Vec<&str> = s.iter().map(|(_, st, _, _)| st.as_str()).collect();
        assert_eq!(got, want, "{platform:?}");
        assert!(
            s.iter().all(|(sha, _, _, _)| *sha == head),
            "{platform:?}: {s:?}"
        );
        match removed {
            Some(_) => assert_eq!(v["code_host"]["state"], "inactive", "{platform:?}"),
            // no state for a removed bench: said, not an error of the teardown
            None => assert!(
                v["code_host"]["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("no state for a removed bench"),
                "{platform:?}: {v}"
            ),
        }
    }
}

/// What the GitLab CI recipe (examples/ci/gitlab-ci.yml) puts in its dotenv report for
/// `environment:url`, given the deploy's JSON result: its own script line, run by bash.
fn gitlab_recipe_url(result: &str) -> String {
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/gitlab-ci.yml");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['bench:deploy']['script'][1])",
        ])
        .arg(&recipe)
        .output()
        .expect("python3 with PyYAML");
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(line.contains("bench.env"), "{line}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bench.json"), result).unwrap();
    let ok = std::process::Command::new("bash")
        .args(["-c", &line])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let env = std::fs::read_to_string(dir.path().join("bench.env")).unwrap();
    env.trim()
        .strip_prefix("BENCH_URL=")
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_code_host_that_refuses_fails_or_hangs_never_fails_the_deploy() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-4"]);
    let gh = FakeCodeHost::start(Platform::GitHub);
    let repo = AppRepo::new();
    repo.branch_with("feature/CHS-4", "four\n");
    for (fault, delay, want) in [
        (Some(401), None, "answered 401"),
        (Some(500), None, "answered 500"),
        (None, Some(std::time::Duration::from_secs(3)), "timed out"),
    ] {
        gh.fail_with(fault);
        gh.delay(delay);
        let before = gh.requests().len();
        let started = std::time::Instant::now();
        let (r, v) = deploy_with(&repo, "feature/CHS-4", "CHS-4", &gh, &["--force"]);
        let took = started.elapsed();
        assert_eq!(r.code, 0, "{fault:?}: {}", r.all());
        assert_eq!(v["code_host"]["state"], "none", "{fault:?}: {v}");
        assert!(
            v["code_host"]["error"]
                .as_str()
                .unwrap_or("")
                .contains(want),
            "{fault:?}: {v}"
        );
        let made = gh.requests().len() - before;
        match fault {
            // refused: not retried (the pending post, then the final one)
            Some(401) => assert_eq!(made, 2, "{fault:?}"),
            // a 5xx or no answer: each post tried twice
            _ => assert_eq!(made, 4, "{fault:?}"),
        }
        // bounded: two tries of one second for the final post, beside the deploy
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    }
}

#[test]
fn without_a_token_a_known_code_host_gets_nothing_and_a_note() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-5"]);
    let gh = FakeCodeHost::start(Platform::GitHub);
    let repo = AppRepo::new();
    repo.branch_with("feature/CHS-5", "five\n");
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/CHS-5",
            "--issue",
            "CHS-5",
            "--repo",
            &repo.path_str(),
        ])
        .args(["--no-link"])
        .args(gh.args()));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("code host: github acme/shop: no BENCHCTL_GITHUB_TOKEN set"),
        "{}",
        r.all()
    );
    assert!(gh.requests().is_empty());
}

#[test]
fn one_pull_request_comment_is_kept_current_on_every_platform() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-6"]);
    let repo = AppRepo::new();
    let branch = "feature/CHS-6";
    repo.branch_with(branch, "six\n");
    let with_comment =
        |host: &FakeCodeHost| deploy_with(&repo, branch, "CHS-6", host, &["--pr-comment"]);
    // without an open pull request: said, nothing written
    let gh = FakeCodeHost::start(Platform::GitHub);
    let (r, v) = with_comment(&gh);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        v["code_host"]["pull_request"], "no open pull request of branch `feature/CHS-6`",
        "{v}"
    );
    assert!(gh.comments().is_empty());

    for platform in Platform::ALL {
        let host = FakeCodeHost::start(platform);
        host.open_pull_request(branch, 7);
        // a new commit, up; a broken one, failed; fixed again, up: one comment throughout
        repo.write("Dockerfile", APP_DOCKERFILE);
        repo.write("www/index.html", &format!("{platform:?}\n"));
        repo.commit("up");
        let (r, v) = with_comment(&host);
        assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        assert_eq!(
            v["code_host"]["pull_request"], "added on #7",
            "{platform:?}: {v}"
        );
        repo.write("Dockerfile", "FROM scratch\nCOPY not-in-the-branch /x\n");
        repo.commit("broken");
        let (r, _) = with_comment(&host);
        assert_eq!(r.code, 1, "{platform:?}: {}", r.all());
        let c = host.comments();
        assert_eq!(c.len(), 1, "{platform:?}: {c:?}");
        assert!(
            c[0].body.contains("**Bench of CHS-6**: failed")
                && c[0].body.contains("not-in-the-branch"),
            "{platform:?}: {}",
            c[0].body
        );
        repo.write("Dockerfile", APP_DOCKERFILE);
        let last = repo.commit("fixed");
        let (r, v) = with_comment(&host);
        assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        assert_eq!(
            v["code_host"]["pull_request"], "updated on #7",
            "{platform:?}: {v}"
        );
        let c = host.comments();
        assert_eq!(c.len(), 1, "{platform:?}: {c:?}");
        let body = &c[0].body;
        assert!(body.starts_with("<!-- benchctl:bench -->"), "{body}");
        assert!(
            body.contains("**Bench of CHS-6**: up")
                && body.contains(&format!("`{}`", &last[..12]))
                && body.contains(v["url"].as_str().unwrap())
                && !body.contains("last error"),
            "{platform:?}: {body}"
        );
        // the teardown says so in the same comment
        let r = run(benchctl()
            .args(["teardown", "CHS-6", "--keep-link", "--pr-comment"])
            .args(host.args())
            .env(host.token_var(), host.token));
        assert_eq!(r.code, 0, "{platform:?}: {}", r.all());
        let c = host.comments();
        assert_eq!(c.len(), 1, "{platform:?}: {c:?}");
        assert!(
            c[0].body.contains("**Bench of CHS-6**: removed"),
            "{platform:?}: {}",
            c[0].body
        );
    }
}

/// `serve` tells the code host as `deploy` does: a push's deploy becomes a GitHub deployment
/// with the bench's address, and the Tracker's close trigger marks it inactive.
#[test]
fn serve_tells_the_code_host_too() {
    use crate::support::serve::*;
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["CHS-7"]);
    let t = serve_tracker();
    t.add_issue("CHS-7");
    let gh = FakeCodeHost::start(Platform::GitHub);
    let repo = AppRepo::new();
    let head = repo.branch_with("feature/CHS-7", "seven\n");
    let state = tempfile::tempdir().unwrap();
    let mut setup = ServeSetup::new(Some(&t), state.path())
        .arg("--repo")
        .arg(&format!("acme/app={}", repo.path_str()))
        .env(gh.token_var(), gh.token)
        .env("BENCHCTL_CODE_HOST_TIMEOUT", "1");
    for a in gh.args() {
        setup = setup.arg(&a);
    }
    let s = setup.start();
    let a = s.github("push", "chs-7", &github_push("feature/CHS-7", &head, false));
    assert_eq!(a.status, 202, "{}", a.body);
    s.wait_until(
        "the deployment succeeded",
        std::time::Duration::from_secs(90),
        |_| {
            gh.deployments()
                .iter()
                .any(|d| d.statuses.iter().any(|(st, _)| st == "success"))
        },
    );
    let d = &gh.deployments()[0];
    assert_eq!(
        (d.sha.as_str(), d.environment.as_str()),
        (head.as_str(), "CHS-7")
    );
    assert_eq!(d.statuses[1].1, bench_url(&t, "CHS-7"), "{}", s.log());

    t.set_status("CHS-7", "closed");
    let a = s.tracker_close("CHS-7");
    assert!(a.status == 200 || a.status == 202, "{}", a.body);
    s.wait_until(
        "the deployment is inactive",
        std::time::Duration::from_secs(60),
        |_| gh.deployments()[0].statuses.last().map(|x| x.0.as_str()) == Some("inactive"),
    );
}
