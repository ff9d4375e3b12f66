//! The deploy's decisions, as pure functions of what was read (the engine's containers and
//! images, the branch's head): whether anything needs doing, whether an image can be reused,
//! whether an older commit may replace a newer one, which port, what the bench is labelled.
//! The phases (`phases.rs`) read, call these, and act.

use crate::app::request::DeployRequest;
use crate::engine::{labels, ContainerInfo, ImageInfo};
use crate::naming::{image_repo, short_commit};
use crate::{Error, Result};
use std::collections::HashMap;

/// Whether the running bench `cur` already serves `head` with `settings` (the no-op): it runs,
/// is not unhealthy, and carries that commit and settings hash.
pub fn serves(cur: &ContainerInfo, head: &str, settings: &str) -> bool {
    cur.running
        && cur.health.as_deref() != Some("unhealthy")
        && cur.labels.get(labels::SETTINGS).map(String::as_str) == Some(settings)
        && cur.labels.get(labels::COMMIT).map(String::as_str) == Some(head)
}

/// The tag of the image of `commit` built with the settings whose hash is `build_hash`.
pub fn image_tag(issue: &str, commit: &str, build_hash: &str) -> String {
    format!(
        "{}:{}-{build_hash}",
        image_repo(issue),
        short_commit(commit)
    )
}

/// An image found under the head's tag that can be used as it is: it was built from `head`
/// and knows its commit time. Returns it with that time.
pub fn reusable(image: Option<ImageInfo>, head: &str) -> Option<(ImageInfo, i64)> {
    let image = image?;
    let time = image.labels.get(labels::COMMIT_TIME)?.parse::<i64>().ok()?;
    (image.labels.get(labels::COMMIT).map(String::as_str) == Some(head)).then_some((image, time))
}

/// Newest wins: whether the running bench `cur` holds a commit newer than `commit_time`.
pub fn runs_newer(cur: &ContainerInfo, commit_time: i64) -> bool {
    cur.labels
        .get(labels::COMMIT_TIME)
        .and_then(|t| t.parse::<i64>().ok())
        .is_some_and(|t| t > commit_time)
}

/// The container port the bench publishes: the one asked for, else the image's single
/// exposed port.
pub fn port(asked: Option<u16>, exposed: &[u16], issue: &str) -> Result<u16> {
    if let Some(p) = asked {
        return Ok(p);
    }
    match exposed {
        [p] => Ok(*p),
        [] => Err(Error::usage(format!(
            "the image of {issue} exposes no TCP port; add EXPOSE to the Dockerfile or pass \
             --port <container port>"
        ))),
        many => Err(Error::usage(format!(
            "the image of {issue} exposes several ports ({}); choose one with --port",
            many.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Where a published port is probed from here: a remote engine publishes on its own host, a
/// local one on the bind address.
pub fn probe_host(bind: &str, engine_host: Option<&str>) -> String {
    match (bind, engine_host) {
        ("0.0.0.0" | "" | "::", Some(remote)) => remote.to_string(),
        ("0.0.0.0" | "", None) => "127.0.0.1".to_string(),
        ("::", None) => "::1".to_string(),
        (other, _) => other.to_string(),
    }
}

/// The labels every object of this deploy carries (images and containers alike).
pub fn base_labels(issue: &str, commit: &str) -> HashMap<String, String> {
    let mut l = HashMap::new();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::ISSUE.to_string(), issue.to_string());
    l.insert(labels::COMMIT.to_string(), commit.to_string());
    l
}

/// What the new bench is: its commit, when it was committed, the port it answers on, and the
/// settings hash a no-op compares.
pub struct BenchIdentity<'a> {
    pub commit: &'a str,
    pub commit_time: i64,
    pub port: u16,
    pub settings: &'a str,
    pub deployed_at: u64,
}

/// The bench's labels: benchctl's own, and the proxy's when it is routed (only benchctl writes
/// these; the branch has no say).
pub fn bench_labels(
    req: &DeployRequest,
    b: &BenchIdentity,
    provider: &str,
) -> Result<HashMap<String, String>> {
    let value = labels::value;
    let mut l = base_labels(&req.issue, b.commit);
    l.insert(labels::BRANCH.to_string(), value(&req.branch));
    l.insert(labels::REPO.to_string(), value(&req.repo.public()));
    l.insert(labels::PORT.to_string(), b.port.to_string());
    l.insert(
        labels::PUBLIC_HOST.to_string(),
        req.bench.public_host.clone(),
    );
    l.insert(labels::DEPLOYED_AT.to_string(), b.deployed_at.to_string());
    l.insert(labels::DEPLOY_ID.to_string(), req.run.deploy_id.clone());
    l.insert(labels::COMMIT_TIME.to_string(), b.commit_time.to_string());
    l.insert(labels::SETTINGS.to_string(), b.settings.to_string());
    l.insert(labels::FIELD.to_string(), req.policy.field.clone());
    l.insert(
        labels::HEALTH_PATH.to_string(),
        req.bench.health_path.clone(),
    );
    l.insert(
        labels::MEMORY.to_string(),
        req.bench.limits.memory_bytes.to_string(),
    );
    if let Some(t) = &req.bench.url_template {
        l.insert(labels::URL_TEMPLATE.to_string(), t.clone());
    }
    if let (Some(router), Some(t)) = (&req.bench.router, &req.bench.url_template) {
        let url = crate::naming::render_url(
            t,
            &crate::naming::UrlValues {
                issue: &req.issue,
                branch: &req.branch,
                commit: b.commit,
                port: None,
            },
        )?;
        l.extend(router.labels(&req.issue, crate::naming::url_host(&url), b.port, provider));
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::routing::Router;

    fn bench(commit: &str, settings: &str, time: i64) -> ContainerInfo {
        let mut labels = HashMap::new();
        labels.insert(labels::COMMIT.to_string(), commit.to_string());
        labels.insert(labels::SETTINGS.to_string(), settings.to_string());
        labels.insert(labels::COMMIT_TIME.to_string(), time.to_string());
        ContainerInfo {
            id: "c1".into(),
            name: "benchctl-proj-1".into(),
            image: String::new(),
            image_id: String::new(),
            labels,
            state: "running".into(),
            running: true,
            exit_code: None,
            restarts: 0,
            health: None,
            host_port: Some(32768),
            ip: None,
            created: None,
            host: None,
            reach_note: None,
        }
    }

    fn request() -> DeployRequest {
        use crate::app::request::{BenchSettings, Machine, Policy, RunState};
        let base = DeployRequest {
            repo: crate::git::RepoSpec {
                location: "/src/app".into(),
                is_local: true,
            },
            branch: String::new(),
            issue: String::new(),
            bench: BenchSettings {
                bind: "0.0.0.0".into(),
                public_host: "bench.example.com".into(),
                ..BenchSettings::default()
            },
            policy: Policy {
                field: "benchLink".into(),
                link: true,
                force: false,
                comments: Default::default(),
            },
            machine: Machine {
                cache_dir: "/tmp".into(),
                engine_host: None,
                cap: Default::default(),
            },
            run: RunState::default(),
        };
        base.for_branch(base.repo.clone(), "feature/PROJ-1-x", "PROJ-1")
    }

    #[test]
    fn the_no_op_needs_the_same_commit_settings_and_a_live_bench() {
        let cur = bench("abc", "s1", 10);
        assert!(serves(&cur, "abc", "s1"));
        assert!(!serves(&cur, "abd", "s1"), "another commit");
        assert!(!serves(&cur, "abc", "s2"), "other settings");
        let mut sick = cur.clone();
        sick.health = Some("unhealthy".into());
        assert!(!serves(&sick, "abc", "s1"), "unhealthy");
        let mut stopped = cur.clone();
        stopped.running = false;
        assert!(!serves(&stopped, "abc", "s1"), "not running");
        let mut starting = cur;
        starting.health = Some("starting".into());
        assert!(
            serves(&starting, "abc", "s1"),
            "a starting health check is no reason"
        );
    }

    #[test]
    fn an_image_is_reused_only_when_built_from_the_head() {
        let image = |commit: &str, time: Option<&str>| {
            let mut labels = HashMap::new();
            labels.insert(labels::COMMIT.to_string(), commit.to_string());
            if let Some(t) = time {
                labels.insert(labels::COMMIT_TIME.to_string(), t.to_string());
            }
            ImageInfo {
                id: "sha256:1".into(),
                exposed_ports: vec![],
                labels,
                created: None,
            }
        };
        assert_eq!(
            reusable(Some(image("abc", Some("42"))), "abc").unwrap().1,
            42
        );
        assert!(reusable(Some(image("abd", Some("42"))), "abc").is_none());
        assert!(
            reusable(Some(image("abc", None)), "abc").is_none(),
            "no time"
        );
        assert!(reusable(Some(image("abc", Some("x"))), "abc").is_none());
        assert!(reusable(None, "abc").is_none());
    }

    #[test]
    fn newest_wins() {
        let cur = bench("abc", "s", 100);
        assert!(runs_newer(&cur, 99));
        assert!(!runs_newer(&cur, 100), "the same time replaces");
        assert!(!runs_newer(&cur, 101));
        let mut unknown = cur;
        unknown.labels.remove(labels::COMMIT_TIME);
        assert!(
            !runs_newer(&unknown, 0),
            "a bench without a time is replaced"
        );
    }

    #[test]
    fn the_port_is_asked_for_or_the_single_exposed_one() {
        assert_eq!(port(Some(3000), &[8080, 9090], "P-1").unwrap(), 3000);
        assert_eq!(port(None, &[8080], "P-1").unwrap(), 8080);
        let none = port(None, &[], "P-1").unwrap_err();
        assert!(none.to_string().contains("EXPOSE") && none.exit_code() == 2);
        let many = port(None, &[80, 443], "P-1").unwrap_err().to_string();
        assert!(
            many.contains("80, 443") && many.contains("--port"),
            "{many}"
        );
    }

    #[test]
    fn probes_go_where_the_port_is_published() {
        assert_eq!(probe_host("0.0.0.0", None), "127.0.0.1");
        assert_eq!(probe_host("::", None), "::1");
        assert_eq!(
            probe_host("0.0.0.0", Some("build.example.com")),
            "build.example.com"
        );
        assert_eq!(
            probe_host("10.1.2.3", Some("build.example.com")),
            "10.1.2.3"
        );
    }

    #[test]
    fn image_tags_name_issue_commit_and_build_settings() {
        assert_eq!(
            image_tag("PROJ-1", "0123456789abcdef", "a1b2c3"),
            "benchctl/proj-1:0123456789ab-a1b2c3"
        );
    }

    #[test]
    fn bench_labels_are_benchctl_s_and_the_proxy_s_only_when_routed() {
        let mut req = request();
        assert_eq!(req.run.deploy_id.len(), 16, "a fresh deploy id");
        let id = BenchIdentity {
            commit: "0123456789abcdef",
            commit_time: 7,
            port: 8080,
            settings: "s1",
            deployed_at: 99,
        };
        let l = bench_labels(&req, &id, "docker").unwrap();
        assert_eq!(l[labels::ISSUE], "PROJ-1");
        assert_eq!(l[labels::BRANCH], "feature/PROJ-1-x");
        assert_eq!(l[labels::COMMIT_TIME], "7");
        assert_eq!(l[labels::DEPLOY_ID], req.run.deploy_id);
        assert!(l.keys().all(|k| k.starts_with("benchctl.")), "{l:?}");
        req.bench.url_template = Some("https://{issue}.bench.example.com".into());
        req.bench.router = Some(Router {
            network: "proxy".into(),
            entrypoint: None,
            cert_resolver: None,
            drain: std::time::Duration::ZERO,
        });
        let l = bench_labels(&req, &id, "docker").unwrap();
        assert_eq!(
            l["traefik.http.routers.benchctl-proj-1.rule"],
            "Host(`proj-1.bench.example.com`)"
        );
        assert_eq!(
            l["traefik.http.services.benchctl-proj-1.loadbalancer.server.port"],
            "8080"
        );
        assert_eq!(l["traefik.docker.network"], "proxy");
        // Traefik v3's swarm provider skips a service that also has docker's keys
        let l = bench_labels(&req, &id, "swarm").unwrap();
        assert_eq!(l["traefik.swarm.network"], "proxy");
        assert!(l.keys().all(|k| !k.starts_with("traefik.docker.")), "{l:?}");
        let l = bench_labels(&req, &id, "docker").unwrap();
        assert!(l.keys().all(|k| !k.starts_with("traefik.swarm.")), "{l:?}");
    }
}
