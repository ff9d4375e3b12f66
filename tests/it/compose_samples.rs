//! Compose benches end to end on real services: PostgreSQL, MariaDB and WordPress built from
//! Debian's packages under the names compose files use (`tests/images.sh`, which `.ci/run`
//! runs once per machine; a missing image fails these tests, naming the script).
//! - docker/awesome-compose's wordpress-mysql, its compose file unchanged: WordPress reaches
//!   its MariaDB over the bench network and answers.
//! - A PostgreSQL bench seeded once by `[hooks.seed]` with `psql`: a commit to the web service
//!   keeps the database's container and its rows.

use crate::support::*;
use std::time::{Duration, Instant};

const GROUP: &str = "compose_samples";

fn require_images(tags: &[&str]) {
    for t in tags {
        let ok = std::process::Command::new("docker")
            .args(["image", "inspect", t])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "image {t} is missing: run tests/images.sh (.ci/run does)"
        );
    }
}

/// Waits until `url` answers with a body for which `ok` holds; the last body otherwise.
fn wait_until(url: &str, secs: u64, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = http_get(url).unwrap_or_default();
        if ok(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{url} answers {got:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn container(issue: &str, service: &str) -> String {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=benchctl.issue={issue}"),
        "--filter",
        &format!("label=benchctl.service={service}"),
    ])
    .join(" ")
}

fn deployed(repo: &AppRepo, branch: &str) -> String {
    let r = run(benchctl().args([
        "--json",
        "deploy",
        branch,
        "--repo",
        &repo.path_str(),
        "--no-link",
        "--ready-timeout",
        "240",
    ]));
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    url.trim_end_matches('/').to_string()
}

#[test]
fn wordpress_mysql_unchanged_reaches_its_mariadb_and_answers() {
    let _group = crate::support::group(GROUP);
    require_docker();
    require_images(&["mariadb:10.6.4-focal", "wordpress:latest"]);
    let _c = Cleanup::issues(&["AWE-1"]);
    let repo = AppRepo::new();
    git(
        repo.path(),
        &["checkout", "-q", "-b", "feature/AWE-1-wordpress"],
    );
    let sample = crate::compose_corpus::corpus().join("wordpress-mysql");
    crate::compose_corpus::copy_dir(&sample, repo.path());
    repo.commit("the wordpress-mysql sample as its authors wrote it");
    let url = deployed(&repo, "feature/AWE-1-wordpress");
    // the installer reads the database: without it, WordPress answers its connection error
    let page = wait_until(&format!("{url}/wp-admin/install.php"), 60, |b| {
        b.contains("WordPress")
    });
    assert!(
        !page.contains("Error establishing a database connection"),
        "{page}"
    );
    let out = docker_lines(&[
        "exec",
        &container("AWE-1", "db"),
        "mariadb",
        "-uwordpress",
        "-pwordpress",
        "-h",
        "127.0.0.1",
        "-N",
        "-e",
        "SELECT DATABASE() FROM DUAL",
        "wordpress",
    ]);
    assert_eq!(out, ["wordpress"]);
}

const PG_FILE: &str = r#"
services:
  db:
    image: postgres:15-bookworm
    environment:
      POSTGRES_USER: app
      POSTGRES_DB: app
      POSTGRES_PASSWORD_FILE: /run/secrets/pw
    secrets: [pw]
    volumes: [data:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD", "pg_isready", "-U", "app", "-h", "127.0.0.1"]
      interval: 1s
      retries: 120
  web:
    build: web
    ports: ["8080"]
    secrets: [pw]
    depends_on:
      db: {condition: service_healthy}
secrets:
  pw: {file: pw.txt}
volumes:
  data:
"#;

const SEED: &str = "[hooks.seed]\nservice = \"db\"\ncommand = \"psql -v ON_ERROR_STOP=1 -U app \
     -d app -c \\\"create table items (id serial primary key, name text); insert into items \
     (name) values ($$apple$$), ($$pear$$)\\\"\"\n";

fn web_sh(version: &str) -> String {
    format!(
        "mkdir -p /tmp/www\n\
         export PGPASSWORD=$(cat /run/secrets/pw)\n\
         while true; do\n\
         rows=$(psql -h db -U app -d app -tAc \"select string_agg(name, ',' order by id) from items\" 2>/dev/null)\n\
         echo \"{version} $rows\" > /tmp/www/index.html\n\
         sleep 0.5\n\
         done &\n\
         exec /bin/busybox httpd -f -p 8080 -h /tmp/www\n"
    )
}

#[test]
fn a_seeded_postgres_keeps_its_rows_and_container_across_a_commit_to_the_web() {
    let _group = crate::support::group(GROUP);
    require_docker();
    require_images(&["postgres:15-bookworm"]);
    let _c = Cleanup::issues(&["AWE-2"]);
    let repo = AppRepo::new();
    let branch = "feature/AWE-2-seeded";
    git(repo.path(), &["checkout", "-q", "-b", branch]);
    repo.write("compose.yaml", PG_FILE);
    repo.write("benchctl.toml", SEED);
    repo.write("pw.txt", "pg-canary-81aa");
    std::fs::create_dir_all(repo.path().join("web")).unwrap();
    std::fs::copy(BUSYBOX, repo.path().join("web/busybox")).unwrap();
    repo.write(
        "web/Dockerfile",
        "FROM postgres:15-bookworm\nCOPY busybox /bin/busybox\nCOPY web.sh /web.sh\n\
         CMD [\"/bin/busybox\", \"sh\", \"/web.sh\"]\n",
    );
    repo.write("web/web.sh", &web_sh("v1"));
    repo.commit("a seeded postgres");
    let url = deployed(&repo, branch);
    wait_until(&url, 60, |b| b.trim() == "v1 apple,pear");
    let db = container("AWE-2", "db");
    assert!(!db.is_empty());

    // a commit to the web only: the database keeps its container, its rows and its seed
    repo.write("web/web.sh", &web_sh("v2"));
    repo.commit("web v2");
    let url = deployed(&repo, branch);
    wait_until(&url, 60, |b| b.trim() == "v2 apple,pear");
    assert_eq!(container("AWE-2", "db"), db);
}
