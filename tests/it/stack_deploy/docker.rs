//! The three-service bench on containers: deploy and link, a web-only redeploy keeping db and
//! its data, seed once and release every time, a failing release hook and a failing web keeping
//! the old bench, teardown keeping or removing the data; and the files a branch may not have.

use super::*;
use crate::support::fake_tracker::{Auth, FakeTracker, Org};

/// A file of the db's volume, through the running db.
fn db_file(path: &str) -> String {
    docker_lines(&["exec", &db_container(), "/bin/busybox", "cat", path]).join("\n")
}

/// The number of lines of a file of the db's volume.
fn db_lines(path: &str) -> String {
    lines_in(&db_container(), path)
}

fn deploy(repo: &AppRepo, t: &FakeTracker) -> Run {
    run(benchctl()
        .args([
            "--json",
            "deploy",
            "feature/STD-1-shop",
            "--repo",
            &repo.path_str(),
        ])
        .tracker(t, TOKEN, "org-1")
        .env("GREETING", "hi")
        .args(["--env", "GREETING"]))
}

fn db_container() -> String {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        "label=benchctl.issue=STD-1",
        "--filter",
        "label=benchctl.service=db",
    ])
    .join(" ")
}
#[test]
fn a_three_service_bench_deploys_keeps_its_data_and_goes_whole() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[ISSUE]);
    let _db = StandIn::build();
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue(ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-1-shop"]);
    repo.write("compose.yaml", COMPOSE);
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", &web_script("v1"));
    repo.write("benchctl.toml", &hooks(RELEASE));
    repo.commit("three services");

    let r = deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        t.field(ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );
    wait_for(&url, "v1 hi count=1 migrated=yes");
    let db = db_container();
    assert!(!db.is_empty());
    assert_eq!(db_lines("/data/seeds"), "1");
    assert_eq!(db_lines("/data/releases"), "1");
    // one bench listed: the web service, with its services
    let row = listed(ISSUE);
    assert_eq!(row["url"], url.as_str());
    let names: Vec<&str> = row["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "db", "migrate"], "{row}");
    assert_eq!(row["services"][0]["url"], url.as_str());
    assert_eq!(row["services"][1]["state"], "running");
    assert_eq!(row["services"][1]["health"], "healthy");
    assert_eq!(row["services"][2]["state"], "exited");
    // each service's limits (the file's, capped by the bench's) and the running ones' total
    let mib = 1024 * 1024;
    assert_eq!(row["services"][1]["limits"]["memory_bytes"], 64 * mib);
    assert_eq!(row["services"][1]["limits"]["cpus"], 0.5);
    let web = row["services"][0]["limits"]["memory_bytes"]
        .as_i64()
        .unwrap();
    assert!(web > 64 * mib, "{row}");
    assert_eq!(row["resources"]["memory_bytes"], web + 64 * mib, "{row}");
    assert_eq!(row["resources"]["services"], 2, "migrate has exited: {row}");
    let r = run(benchctl().args(["status", ISSUE]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("service:  db running (healthy) benchctl-test/stack-db:1 [64 MiB, 0.5 CPUs"),
        "{}",
        r.stdout
    );
    let total = format!("resources: {} MiB, ", (web + 64 * mib) / mib);
    assert!(
        r.stdout.contains(&total) && r.stdout.contains("its 2 running service(s)"),
        "{}",
        r.stdout
    );

    // a web-only commit: db keeps running with its data, migrate is not run again
    repo.write("web.sh", &web_script("v2"));
    repo.commit("web v2");
    let r = deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(db_container(), db, "the db container was replaced");
    // seeded once in the bench's life, released on every deploy
    assert_eq!(db_lines("/data/seeds"), "1");
    assert_eq!(db_lines("/data/releases"), "2");

    // a release hook that fails: the deploy fails with its output, the bench keeps serving
    repo.write(
        "benchctl.toml",
        &hooks("/bin/busybox sh -c 'echo release-broke; exit 4'"),
    );
    repo.commit("a broken release");
    let r = run(benchctl()
        .args([
            "deploy",
            "feature/STD-1-shop",
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .env("GREETING", "hi")
        .args(["--env", "GREETING"]));
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("release hook")
            && r.stderr.contains("exit code 4")
            && r.stderr.contains("release-broke"),
        "{}",
        r.stderr
    );
    wait_for(&url, "v2 hi count=1 migrated=yes");
    repo.write("benchctl.toml", &hooks(RELEASE));

    // a web that fails: the old bench keeps serving, the link stays
    repo.write("web.sh", "exit 3\n");
    repo.commit("broken web");
    let r = deploy(&repo, &t);
    assert_eq!(r.code, 1, "{}", r.all());
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(
        t.field(ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );

    // teardown keeping the data: the next bench of the issue finds it
    let r = run(benchctl().args(["teardown", ISSUE, "--keep-link", "--keep-volumes"]));
    assert_eq!(r.code, 0, "{}", r.all());
    // only the record that the kept data was seeded stays with it
    let left = all_issue_containers(ISSUE);
    assert!(
        left.len() == 1 && left[0].contains(" benchctl-seeded-std-1 "),
        "{left:?}"
    );
    assert_eq!(
        docker_lines(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=benchctl.issue=STD-1"
        ])
        .len(),
        1
    );
    repo.write("web.sh", &web_script("v3"));
    repo.commit("web v3");
    let r = deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    wait_for(&url, "v3 hi count=2 migrated=yes");
    // the teardown hook ran before the removal; the kept data was not seeded again
    assert_eq!(db_file("/data/bye"), "bye");
    assert_eq!(db_lines("/data/seeds"), "1");

    // teardown: every container, the network and the volume
    let r = run(benchctl()
        .args(["teardown", ISSUE])
        .tracker(&t, TOKEN, "org-1"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        all_issue_containers(ISSUE).is_empty(),
        "{:?}",
        all_issue_containers(ISSUE)
    );
    for kind in ["network", "volume"] {
        assert!(
            docker_lines(&[kind, "ls", "-q", "--filter", "label=benchctl.issue=STD-1"]).is_empty(),
            "a {kind} is left"
        );
    }
    assert_eq!(t.field(ISSUE, "benchLink"), None);
    assert!(http_get(&url).is_none());
}

#[test]
fn a_compose_file_a_branch_may_not_have_is_refused_before_any_work() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&["STD-2"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-2"]);
    for (text, parts) in [
        (
            "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n    volumes: [\"/etc:/host\"]\n",
            vec!["compose.yaml", "host-paths"],
        ),
        (
            "services:\n  web:\n    build: .\n    privileged: true\n",
            vec!["compose.yaml", "line 4", "`services.web.privileged`"],
        ),
        (
            "services:\n  web:\n    build: .\n    image: \"x:${NEED:?set NEED}\"\n",
            vec!["NEED is required: set NEED"],
        ),
    ] {
        repo.write("compose.yaml", text);
        let commit = repo.commit("compose");
        let r = run(benchctl().args(["deploy", "feature/STD-2", "--repo", &repo.path_str(), "--no-link"]));
        assert_eq!(r.code, 2, "{text}: {}", r.all());
        for p in parts.iter().chain([&&commit[..7]]) {
            assert!(r.stderr.contains(p), "{text}: {p} not in {}", r.stderr);
        }
        assert!(all_issue_containers("STD-2").is_empty());
    }
}

/// A file list a service's image holds under `/ctx`, sorted.
fn listed_in(container: &str) -> Vec<String> {
    let mut files = docker_lines(&["exec", container, "/bin/busybox", "ls", "-a", "/ctx"]);
    files.retain(|f| f != "." && f != "..");
    files.sort();
    files
}

#[test]
fn each_service_s_context_is_sent_with_its_own_dockerignore() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&["STD-6"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-6"]);
    // both images copy their whole context to /ctx and serve it
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY . /ctx\n\
                      CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/ctx\"]\n";
    std::fs::create_dir_all(repo.path().join("helper")).unwrap();
    std::fs::copy(BUSYBOX, repo.path().join("helper/busybox")).unwrap();
    repo.write("Dockerfile", dockerfile);
    repo.write("helper/Dockerfile", dockerfile);
    repo.write(".dockerignore", "kept.txt\nhelper\n");
    repo.write("kept.txt", "only the helper's context sends me\n");
    repo.write(
        "helper/kept.txt",
        "the root's ignore file is not the helper's\n",
    );
    repo.write("helper/.dockerignore", "local.txt\n");
    repo.write("helper/local.txt", "ignored by the helper's own file\n");
    repo.write(
        "compose.yaml",
        "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n  helper:\n    build: ./helper\n",
    );
    repo.commit("two contexts");
    let r = run(benchctl().args([
        "deploy",
        "feature/STD-6",
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let web = docker_lines(&["ps", "-q", "--filter", "name=^benchctl-std-6$"]).join("");
    let helper =
        docker_lines(&["ps", "-q", "--filter", "name=^benchctl-std-6-svc-helper$"]).join("");
    let web_files = listed_in(&web);
    assert!(
        !web_files.contains(&"kept.txt".to_string()) && !web_files.contains(&"helper".to_string()),
        "{web_files:?}"
    );
    assert!(
        web_files.contains(&"compose.yaml".to_string()),
        "{web_files:?}"
    );
    assert_eq!(
        listed_in(&helper),
        [".dockerignore", "Dockerfile", "busybox", "kept.txt"]
    );
}
