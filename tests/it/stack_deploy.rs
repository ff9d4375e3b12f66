//! Benches of several services through the real binary: a branch's Compose file with a web
//! service built from the branch, a "db" (a stand-in image whose busybox keeps a counter in a
//! named volume and answers on a port) and a one-shot "migrate" that must complete. Deploy
//! links the web service's address; a web-only redeploy keeps the db container and its data; a
//! failing web keeps the old bench; teardown removes containers, network and volumes. The
//! swarm variant runs the same bench as services on a single-node swarm.

use crate::support::fake_tracker::{Auth, FakeTracker, Org};
use crate::support::swarm::SwarmGuard;
use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "stack-oauth-canary-31c2";
const ISSUE: &str = "STD-1";
const DB_IMAGE: &str = "benchctl-test/stack-db:1";

const COMPOSE: &str = r#"
services:
  web:
    build: .
    ports: ["8080"]
    environment:
      GREETING: "${GREETING:-hello}"
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  db:
    image: benchctl-test/stack-db:1
    volumes: ["data:/data"]
    deploy: {resources: {limits: {memory: 64m, cpus: "0.5"}}}
    healthcheck:
      test: ["CMD", "/bin/busybox", "test", "-f", "/data/count"]
      interval: 300ms
      retries: 20
  migrate:
    image: benchctl-test/stack-db:1
    entrypoint: ["/bin/busybox", "sh", "-c"]
    command: ["/bin/busybox wget -q -O- http://db:5432/count && echo yes > /data/migrated"]
    volumes: ["data:/data"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data:
"#;

/// The web service: reads the count and the migration mark from db over the bench network.
fn web_script(version: &str) -> String {
    format!(
        "mkdir -p /tmp/www\n\
         while true; do\n\
         c=$(/bin/busybox wget -q -O- http://db:5432/count)\n\
         m=$(/bin/busybox wget -q -O- http://db:5432/migrated)\n\
         echo \"{version} $GREETING count=$c migrated=$m\" > /tmp/www/next && mv /tmp/www/next /tmp/www/index.html\n\
         sleep 0.2\n\
         done &\n\
         exec /bin/busybox httpd -f -p 8080 -h /tmp/www\n"
    )
}

/// The bench's hooks: seed and release leave lines in the db's volume, teardown a mark.
fn hooks(release: &str) -> String {
    format!(
        "[hooks.seed]\nservice = \"db\"\ncommand = \"/bin/busybox sh -c 'echo seeded >> /data/seeds'\"\n\
         [hooks.release]\nservice = \"db\"\ncommand = \"{release}\"\ntimeout = 30\n\
         [hooks.teardown]\nservice = \"db\"\ncommand = \"/bin/busybox sh -c 'echo bye > /data/bye'\"\n"
    )
}

const RELEASE: &str = "/bin/busybox sh -c 'echo released >> /data/releases'";

/// A file of the db's volume, through the running db.
fn db_file(path: &str) -> String {
    docker_lines(&["exec", &db_container(), "/bin/busybox", "cat", path]).join("\n")
}

/// The number of lines of a file of the db's volume, through the db container `db`.
fn lines_in(db: &str, path: &str) -> String {
    let out = docker_lines(&["exec", db, "/bin/busybox", "wc", "-l", path]);
    out[0].split_whitespace().next().unwrap().to_string()
}

/// The number of lines of a file of the db's volume.
fn db_lines(path: &str) -> String {
    lines_in(&db_container(), path)
}

const WEB_DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.sh /web.sh\n\
     CMD [\"/bin/busybox\", \"sh\", \"/web.sh\"]\n";

struct StandIn(&'static str);

impl StandIn {
    fn build() -> StandIn {
        StandIn::build_as(DB_IMAGE)
    }

    fn build_as(tag: &'static str) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sh\", \"-c\", \
             \"mkdir -p /data; c=$(cat /data/count 2>/dev/null || echo 0); echo $((c+1)) > \
             /data/count; exec /bin/busybox httpd -f -p 5432 -h /data\"]\n",
        )
        .unwrap();
        docker_build(dir.path(), tag, &[]);
        StandIn(tag)
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", self.0]).output();
    }
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
        .env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1")
        .env("GREETING", "hi")
        .args(["--env", "GREETING"]))
}

fn wait_for(url: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = http_get(url).unwrap_or_default();
        if got.trim() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} answers {got:?}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let _group = crate::support::group(module_path!());
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
        .env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1"));
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
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["STD-2"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-2"]);
    for (text, parts) in [
        (
            "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n    volumes: [\"/etc:/host\"]\n",
            vec!["compose.yaml", "path of the host"],
        ),
        (
            "services:\n  web:\n    build: .\n    privileged: true\n",
            vec!["compose.yaml", "line 4", "`privileged`"],
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

/// The swarm variant's issue and its db stand-in (a tag of its own: the docker variant runs
/// beside it and removes its own).
const SWARM_ISSUE: &str = "STD-3";
const SWARM_DB_IMAGE: &str = "benchctl-test/stack-db-swarm:1";

/// `deploy` of the swarm variant's branch on the swarm (host publish mode).
fn swarm_deploy(repo: &AppRepo, t: &FakeTracker) -> Run {
    run(benchctl()
        .env("BENCHCTL_BACKEND", "swarm")
        .env("BENCHCTL_PUBLISH_MODE", "host")
        .args(["--json", "deploy", "feature/STD-3-shop", "--repo"])
        .arg(repo.path_str())
        .env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1")
        .env("GREETING", "hi")
        .args(["--env", "GREETING", "--ready-timeout", "60"]))
}

/// The swarm variant's services as `docker service ls` names them, sorted.
fn swarm_services() -> Vec<String> {
    let mut names = docker_lines(&[
        "service",
        "ls",
        "--filter",
        "label=benchctl.issue=STD-3",
        "--format",
        "{{.Name}}",
    ]);
    names.sort();
    names
}

/// The running container of the swarm variant's db service.
fn swarm_db() -> String {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=benchctl-std-3-svc-db",
    ])
    .join(" ")
}

#[test]
fn on_a_swarm_the_services_are_swarm_services_and_the_web_one_updates_in_place() {
    let _group = crate::support::group(module_path!());
    let _swarm = SwarmGuard::acquire();
    let _c = Cleanup::issues(&[SWARM_ISSUE]);
    let _db = StandIn::build_as(SWARM_DB_IMAGE);
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue(SWARM_ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-3-shop"]);
    repo.write("compose.yaml", &COMPOSE.replace(DB_IMAGE, SWARM_DB_IMAGE));
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", &web_script("v1"));
    // the seed in a one-off container of db's image on the overlay network, with its volume
    let one_off = hooks(RELEASE).replace("[hooks.seed]\n", "[hooks.seed]\nrun = \"one-off\"\n");
    assert!(one_off.contains("one-off"));
    repo.write("benchctl.toml", &one_off);
    repo.commit("three services");

    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(
        t.field(SWARM_ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );
    // the web service reads db's data over the bench's overlay network
    wait_for(&url, "v1 hi count=1 migrated=yes");
    assert_eq!(
        swarm_services(),
        [
            "benchctl-std-3",
            "benchctl-std-3-svc-db",
            "benchctl-std-3-svc-migrate"
        ]
    );
    let driver = docker_lines(&[
        "network",
        "inspect",
        "benchctl-std-3",
        "--format",
        "{{.Driver}}",
    ]);
    assert_eq!(driver, ["overlay"]);
    // the db keeps its data in a volume of this node: it is pinned here
    let node = docker_lines(&["info", "--format", "{{.Swarm.NodeID}}"]).join("");
    let constraints = docker_lines(&[
        "service",
        "inspect",
        "benchctl-std-3-svc-db",
        "--format",
        "{{json .Spec.TaskTemplate.Placement.Constraints}}",
    ]);
    assert_eq!(constraints, [format!("[\"node.id=={node}\"]")]);
    let db = swarm_db();
    assert!(!db.is_empty());
    assert_eq!(lines_in(&db, "/data/seeds"), "1");
    assert_eq!(lines_in(&db, "/data/releases"), "1");
    let row = listed_by(
        {
            let mut c = benchctl();
            c.env("BENCHCTL_BACKEND", "swarm");
            c
        },
        SWARM_ISSUE,
    );
    let states: Vec<(&str, &str)> = row["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("web", "running"), ("db", "running"), ("migrate", "exited")],
        "{row}"
    );
    let web_id = docker_lines(&[
        "service",
        "inspect",
        "benchctl-std-3",
        "--format",
        "{{.ID}}",
    ]);

    // a web-only commit: the web service is updated in place; db keeps running with its data
    repo.write("web.sh", &web_script("v2"));
    repo.commit("web v2");
    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 0, "{}", r.all());
    // a host-mode port is the new task's own
    let url = r.json()["url"].as_str().unwrap().to_string();
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(swarm_db(), db, "the db task was replaced");
    assert_eq!(
        docker_lines(&[
            "service",
            "inspect",
            "benchctl-std-3",
            "--format",
            "{{.ID}}"
        ]),
        web_id
    );
    assert_eq!(lines_in(&db, "/data/seeds"), "1");
    assert_eq!(lines_in(&db, "/data/releases"), "2");

    // a web that fails: the swarm rolls back, the old version keeps serving, the link stays
    repo.write("web.sh", "exit 3\n");
    repo.commit("broken web");
    let r = swarm_deploy(&repo, &t);
    assert_eq!(r.code, 1, "{}", r.all());
    wait_for(&url, "v2 hi count=1 migrated=yes");
    assert_eq!(
        t.field(SWARM_ISSUE, "benchLink")
            .and_then(|v| v.as_str().map(String::from)),
        Some(url.clone())
    );

    // teardown: the teardown hook, every service, the network and the volume
    let r = run(benchctl()
        .env("BENCHCTL_BACKEND", "swarm")
        .args(["teardown", SWARM_ISSUE])
        .env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1"));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("teardown hook done"), "{}", r.all());
    assert!(swarm_services().is_empty(), "{:?}", swarm_services());
    for kind in ["network", "volume"] {
        assert!(
            docker_lines(&[kind, "ls", "-q", "--filter", "label=benchctl.issue=STD-3"]).is_empty(),
            "a {kind} is left"
        );
    }
    assert_eq!(t.field(SWARM_ISSUE, "benchLink"), None);
}

/// The issue whose first deploy fails, and whose parts gc finds without a bench.
const LEFT_ISSUE: &str = "STD-4";

/// The parts of `issue` of `kind` (`network`, `volume`), by name.
fn parts(kind: &str, issue: &str) -> Vec<String> {
    docker_lines(&[
        kind,
        "ls",
        "--filter",
        &format!("label=benchctl.issue={issue}"),
        "--format",
        "{{.Name}}",
    ])
}

/// `benchctl gc --scope <repo> --json` with the fake Tracker: the actions on a multi-service
/// bench's parts as (action, target).
fn gc(repo: &AppRepo, t: &FakeTracker) -> Vec<(String, String)> {
    let r = run(benchctl()
        .args(["gc", "--scope", &repo.path_str(), "--json"])
        .env("BENCHCTL_TRACKER_URL", &t.url)
        .env("BENCHCTL_TRACKER_TOKEN", TOKEN)
        .env("BENCHCTL_TRACKER_ORG_ID", "org-1"));
    assert_eq!(r.code, 0, "{}", r.all());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let f = |k: &str| a[k].as_str().unwrap().to_string();
            (f("action"), f("target"))
        })
        .filter(|(a, _)| a == "remove-services" || a == "remove-volumes")
        .collect()
}

#[test]
fn a_stack_without_its_bench_keeps_only_its_data_and_that_goes_with_the_issue() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&[LEFT_ISSUE]);
    let _db = StandIn::build_as("benchctl-test/stack-db-left:1");
    let t = FakeTracker::start(Auth::OAuth(TOKEN), Org::Org("org-1"));
    t.add_issue(LEFT_ISSUE);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/STD-4"]);
    repo.write(
        "compose.yaml",
        &COMPOSE.replace(DB_IMAGE, "benchctl-test/stack-db-left:1"),
    );
    repo.write("Dockerfile", WEB_DOCKERFILE);
    repo.write("web.sh", "exit 3\n");
    repo.commit("a web that fails");
    let deploy = || {
        run(benchctl()
            .args([
                "deploy",
                "feature/STD-4",
                "--repo",
                &repo.path_str(),
                "--no-link",
            ])
            .args(["--ready-timeout", "20"]))
    };

    // a first deploy that fails: no bench, so its services and network go; its data stays
    let r = deploy();
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("has no bench: removed its services"),
        "{}",
        r.all()
    );
    assert!(
        issue_containers(LEFT_ISSUE).is_empty(),
        "{:?}",
        issue_containers(LEFT_ISSUE)
    );
    assert!(parts("network", LEFT_ISSUE).is_empty());
    assert_eq!(parts("volume", LEFT_ISSUE), ["benchctl-std-4-data"]);

    // a bench lost another way (removed by hand): gc removes its services and network
    repo.write("web.sh", &web_script("v1"));
    repo.commit("web v1");
    let r = deploy();
    assert_eq!(r.code, 0, "{}", r.all());
    let web = docker_lines(&["ps", "-q", "--filter", "name=^benchctl-std-4$"]);
    assert_eq!(web.len(), 1);
    docker_lines(&["rm", "-f", &web[0]]);
    assert_eq!(
        gc(&repo, &t),
        [("remove-services".to_string(), LEFT_ISSUE.to_string())]
    );
    let left: Vec<String> = issue_containers(LEFT_ISSUE);
    assert!(left.is_empty(), "{left:?}");
    assert!(parts("network", LEFT_ISSUE).is_empty());
    // the data of an open issue stays; of a closed one, it goes
    assert!(gc(&repo, &t).is_empty());
    assert_eq!(parts("volume", LEFT_ISSUE), ["benchctl-std-4-data"]);
    t.set_status(LEFT_ISSUE, "closed");
    assert_eq!(
        gc(&repo, &t),
        [("remove-volumes".to_string(), LEFT_ISSUE.to_string())]
    );
    assert!(parts("volume", LEFT_ISSUE).is_empty());
    assert!(
        all_issue_containers(LEFT_ISSUE)
            .iter()
            .all(|c| !c.contains("benchctl-seeded-")),
        "{:?}",
        all_issue_containers(LEFT_ISSUE)
    );
}
