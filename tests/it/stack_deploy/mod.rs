//! Benches of several services through the real binary: a branch's Compose file with a web
//! service built from the branch, a "db" (a stand-in image whose busybox keeps a counter in a
//! named volume and answers on a port) and a one-shot "migrate" that must complete. The
//! fixtures are here; `docker.rs` deploys, redeploys and tears the bench down on containers,
//! `swarm.rs` the same bench as services of a single-node swarm, `serve.rs` through `benchctl
//! serve`, and `leftovers.rs` what a bench-less stack leaves to gc.

use crate::support::*;
use std::process::Command;
use std::time::{Duration, Instant};

mod docker;
mod leftovers;
mod real_files;
mod replicas;
mod serve;
mod swarm;
mod swarm_files;

/// The tests' group: they run beside each other (each its own issue and stand-in image).
const GROUP: &str = "stack_deploy";

pub(super) const TOKEN: &str = "stack-oauth-canary-31c2";
pub(super) const ISSUE: &str = "STD-1";
pub(super) const DB_IMAGE: &str = "benchctl-test/stack-db:1";

pub(super) const COMPOSE: &str = r#"
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
pub(super) fn web_script(version: &str) -> String {
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
pub(super) fn hooks(release: &str) -> String {
    format!(
        "[hooks.seed]\nservice = \"db\"\ncommand = \"/bin/busybox sh -c 'echo seeded >> /data/seeds'\"\n\
         [hooks.release]\nservice = \"db\"\ncommand = \"{release}\"\ntimeout = 30\n\
         [hooks.teardown]\nservice = \"db\"\ncommand = \"/bin/busybox sh -c 'echo bye > /data/bye'\"\n"
    )
}

pub(super) const RELEASE: &str = "/bin/busybox sh -c 'echo released >> /data/releases'";

/// The number of lines of a file of the db's volume, through the db container `db`.
pub(super) fn lines_in(db: &str, path: &str) -> String {
    let out = docker_lines(&["exec", db, "/bin/busybox", "wc", "-l", path]);
    out[0].split_whitespace().next().unwrap().to_string()
}

pub(super) const WEB_DOCKERFILE: &str =
    "FROM scratch\nCOPY busybox /bin/busybox\nCOPY web.sh /web.sh\n\
     CMD [\"/bin/busybox\", \"sh\", \"/web.sh\"]\n";

pub(super) struct StandIn(&'static str);

impl StandIn {
    pub(super) fn build() -> StandIn {
        StandIn::build_as(DB_IMAGE)
    }

    pub(super) fn build_as(tag: &'static str) -> StandIn {
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

pub(super) fn wait_for(url: &str, want: &str) {
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
