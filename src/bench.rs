//! Deploy, list and teardown: the orchestration. It never prints; it reports [`Event`]s.

use crate::git::RepoSpec;
use crate::image::{self, BuildSpec};
use crate::naming::{container_name, image_repo, short_commit};
use crate::output::{Event, SharedReporter};
use crate::runtime::{labels, ContainerInfo, ContainerSpec, Engine, Limits};
use crate::tracker::TrackerClient;
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Everything a deploy needs to know, resolved by the CLI layer.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub repo: RepoSpec,
    pub branch: String,
    pub issue: String,
    pub dockerfile: String,
    pub port: Option<u16>,
    pub bind: String,
    pub public_host: String,
    pub ready_timeout: Duration,
    pub limits: Limits,
    pub field: String,
    /// False with `--no-link`.
    pub link: bool,
}

/// One bench, as `deploy --json` and `list --json` print it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchRecord {
    pub issue: String,
    pub branch: String,
    /// Full commit id.
    pub commit: String,
    pub image: String,
    pub container: String,
    pub url: Option<String>,
    /// Whether the Tracker field was set (deploy); `null` in `list`, which does not ask.
    pub linked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct DeployOutcome {
    pub bench: BenchRecord,
    /// Why the bench was not linked, when that was not an error (no Tracker, `--no-link`).
    pub link_skipped: Option<String>,
    /// The Tracker's refusal, when linking failed (exit code 3).
    pub link_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeardownOutcome {
    pub issue: String,
    pub removed_containers: Vec<String>,
    pub removed_images: usize,
    pub link_cleared: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_error: Option<String>,
}

fn issue_filter(issue: &str) -> Vec<String> {
    vec![
        format!("{}=true", labels::MANAGED),
        format!("{}={issue}", labels::ISSUE),
    ]
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Label values stay readable but bounded.
fn label_value(v: &str) -> String {
    v.chars().take(255).collect()
}

pub fn bench_url(public_host: &str, port: u16) -> String {
    if public_host.contains(':') && !public_host.starts_with('[') {
        format!("http://[{public_host}]:{port}/")
    } else {
        format!("http://{public_host}:{port}/")
    }
}

/// Clones, builds, starts the new bench beside the old one, waits until it answers, then
/// removes the old one and links the new address in the Tracker.
pub async fn deploy(
    req: &DeployRequest,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
) -> Result<DeployOutcome> {
    let issue = req.issue.as_str();
    reporter.report(Event::Step(format!(
        "fetching branch `{}` of {} for {issue}",
        req.branch, req.repo
    )));
    let checkout = tempfile::Builder::new()
        .prefix("benchctl-checkout-")
        .tempdir()
        .map_err(|e| Error::Engine(format!("cannot create a temporary directory: {e}")))?;
    let commit = {
        let repo = req.repo.clone();
        let branch = req.branch.clone();
        let dest = checkout.path().to_path_buf();
        let rep = reporter.clone();
        tokio::task::spawn_blocking(move || crate::git::fetch_branch(&repo, &branch, &dest, &rep))
            .await
            .map_err(|e| Error::Engine(format!("the fetch task failed: {e}")))??
    };
    reporter.report(Event::Done(format!("commit {}", short_commit(&commit))));

    let src = checkout.path().join("src");
    let dockerfile = image::dockerfile_path(&src, &req.dockerfile, &req.branch)?;
    let tag = format!("{}:{}", image_repo(issue), short_commit(&commit));
    let mut base_labels = HashMap::new();
    base_labels.insert(labels::MANAGED.to_string(), "true".to_string());
    base_labels.insert(labels::ISSUE.to_string(), issue.to_string());
    base_labels.insert(labels::COMMIT.to_string(), commit.clone());
    // The classic builder turns every image label into a build step: keep images to the three
    // labels that ownership and cleanup need; containers get the rest.
    let spec = BuildSpec {
        dockerfile,
        tag: tag.clone(),
        labels: base_labels.clone(),
    };
    reporter.report(Event::Step(format!("building {tag}")));
    let image_id = image::build(engine, &src, &spec, issue, &req.branch, reporter).await?;
    drop(checkout);
    reporter.report(Event::Done(format!("built {tag}")));

    let port = match req.port {
        Some(p) => p,
        None => {
            let info = engine.image(&image_id).await?.ok_or_else(|| {
                Error::Engine(format!("image {tag} vanished right after its build"))
            })?;
            match info.exposed_ports.as_slice() {
                [p] => *p,
                [] => {
                    return Err(Error::usage(format!(
                        "the image of {issue} exposes no TCP port; add EXPOSE to the Dockerfile \
                         or pass --port <container port>"
                    )))
                }
                many => {
                    return Err(Error::usage(format!(
                        "the image of {issue} exposes several ports ({}); choose one with --port",
                        many.iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            }
        }
    };

    let existing = engine.containers(&issue_filter(issue)).await?;
    let final_name = container_name(issue);
    let name = if existing.is_empty() {
        final_name.clone()
    } else {
        format!("{final_name}-next-{:08x}", rand::random::<u32>())
    };
    let mut container_labels = base_labels;
    container_labels.insert(labels::BRANCH.to_string(), label_value(&req.branch));
    container_labels.insert(labels::REPO.to_string(), label_value(&req.repo.location));
    container_labels.insert(labels::PORT.to_string(), port.to_string());
    container_labels.insert(labels::PUBLIC_HOST.to_string(), req.public_host.clone());
    container_labels.insert(labels::DEPLOYED_AT.to_string(), now_unix().to_string());
    let cspec = ContainerSpec {
        name: name.clone(),
        image: tag.clone(),
        labels: container_labels,
        container_port: port,
        bind: req.bind.clone(),
        limits: req.limits.clone(),
    };
    reporter.report(Event::Step(format!("starting {name} (port {port})")));
    let id = engine.run(&cspec).await?;

    let probe_host = match req.bind.as_str() {
        "0.0.0.0" | "" => "127.0.0.1".to_string(),
        "::" => "::1".to_string(),
        other => other.to_string(),
    };
    reporter.report(Event::Step(format!(
        "waiting for {issue} to answer (up to {} s)",
        req.ready_timeout.as_secs()
    )));
    let host_port = match wait_ready(engine, &id, &probe_host, req.ready_timeout).await {
        Ok(p) => p,
        Err(reason) => {
            let logs = engine.logs_tail(&id, 20).await.unwrap_or_default();
            engine.remove(&id).await?;
            return Err(Error::NotReady {
                issue: issue.to_string(),
                reason,
                logs,
                kept_old: !existing.is_empty(),
            });
        }
    };
    let url = bench_url(&req.public_host, host_port);
    reporter.report(Event::Done(format!("{issue} answers at {url}")));

    for old in existing.iter().filter(|c| c.id != id) {
        engine.remove(&old.id).await?;
        reporter.report(Event::Done(format!(
            "removed the previous bench {}",
            old.name
        )));
    }
    if name != final_name {
        engine.rename(&id, &final_name).await?;
    }
    remove_unused_images(engine, issue, Some(&image_id), reporter).await;

    let mut bench = BenchRecord {
        issue: issue.to_string(),
        branch: req.branch.clone(),
        commit,
        image: tag,
        container: final_name,
        url: Some(url.clone()),
        linked: Some(false),
        state: None,
        age_seconds: None,
    };
    let (link_skipped, link_error) = match (req.link, tracker) {
        (false, _) => (Some("--no-link was given".to_string()), None),
        (true, None) => (Some("no Tracker is configured".to_string()), None),
        (true, Some(t)) => {
            reporter.report(Event::Step(format!(
                "setting field `{}` of {issue}",
                req.field
            )));
            match t.set_field(issue, &req.field, Some(&url)).await {
                Ok(_) => {
                    bench.linked = Some(true);
                    reporter.report(Event::Done(format!(
                        "{issue}: field `{}` = {url}",
                        req.field
                    )));
                    (None, None)
                }
                Err(e) => (None, Some(e.to_string())),
            }
        }
    };
    Ok(DeployOutcome {
        bench,
        link_skipped,
        link_error,
    })
}

/// Waits until the container is healthy (with a HEALTHCHECK) or answers HTTP (without one).
/// Returns the host port, or why it never became ready.
async fn wait_ready(
    engine: &dyn Engine,
    id: &str,
    probe_host: &str,
    timeout: Duration,
) -> std::result::Result<u16, String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last_problem: String;
    loop {
        let info = engine
            .inspect(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the container disappeared")?;
        if !info.running || info.restarts > 0 || info.state == "restarting" {
            return Err(match info.exit_code {
                Some(code) if !info.running || info.restarts > 0 => {
                    format!("the container exited with code {code}")
                }
                _ => format!("the container is {}", info.state),
            });
        }
        let port = info.host_port.ok_or("the engine published no host port")?;
        match info.health.as_deref() {
            Some("healthy") => return Ok(port),
            Some("unhealthy") => return Err("its HEALTHCHECK reports unhealthy".into()),
            Some(_) => last_problem = "its HEALTHCHECK has not passed yet".into(),
            None => {
                let host = if probe_host.contains(':') {
                    format!("[{probe_host}]")
                } else {
                    probe_host.to_string()
                };
                match http.get(format!("http://{host}:{port}/")).send().await {
                    Ok(_) => return Ok(port),
                    Err(e) => last_problem = format!("no HTTP answer on port {port} ({e})"),
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready within {} s: {last_problem}; raise --ready-timeout if it needs longer",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes the issue's images that no container of the issue uses (all of them with `keep: None`).
async fn remove_unused_images(
    engine: &dyn Engine,
    issue: &str,
    keep: Option<&str>,
    reporter: &SharedReporter,
) -> usize {
    let Ok(images) = engine.images(&issue_filter(issue)).await else {
        return 0;
    };
    let mut removed = 0;
    for img in images {
        if Some(img.id.as_str()) == keep {
            continue;
        }
        match engine.remove_image(&img.id).await {
            Ok(()) => removed += 1,
            Err(e) => reporter.report(Event::Warn(format!(
                "could not remove image {} of {issue}: {e}",
                img.id
            ))),
        }
    }
    removed
}

fn record_from(c: &ContainerInfo, now: u64) -> BenchRecord {
    let l = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let url = match (c.host_port, c.labels.get(labels::PUBLIC_HOST)) {
        (Some(p), Some(h)) => Some(bench_url(h, p)),
        _ => None,
    };
    let deployed = l(labels::DEPLOYED_AT).parse::<u64>().ok();
    let since = deployed.or(c.created.map(|c| c.max(0) as u64));
    BenchRecord {
        issue: l(labels::ISSUE),
        branch: l(labels::BRANCH),
        commit: l(labels::COMMIT),
        image: c.image.clone(),
        container: c.name.clone(),
        url,
        linked: None,
        state: Some(match &c.health {
            Some(h) if c.running => format!("{} ({h})", c.state),
            _ => c.state.clone(),
        }),
        age_seconds: since.map(|s| now.saturating_sub(s)),
    }
}

/// Every bench, found by label, sorted by issue.
pub async fn list(engine: &dyn Engine) -> Result<Vec<BenchRecord>> {
    let containers = engine
        .containers(&[format!("{}=true", labels::MANAGED)])
        .await?;
    let now = now_unix();
    let mut out: Vec<BenchRecord> = containers.iter().map(|c| record_from(c, now)).collect();
    out.sort_by(|a, b| a.issue.cmp(&b.issue).then(a.container.cmp(&b.container)));
    Ok(out)
}

/// Removes the issue's containers and images and clears its field (unless `clear_link` is off
/// or no Tracker is configured).
pub async fn teardown(
    issue: &str,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    field: &str,
    clear_link: bool,
    reporter: &SharedReporter,
) -> Result<TeardownOutcome> {
    reporter.report(Event::Step(format!("tearing down {issue}")));
    let containers = engine.containers(&issue_filter(issue)).await?;
    let mut removed = Vec::new();
    for c in &containers {
        engine.remove(&c.id).await?;
        reporter.report(Event::Done(format!("removed container {}", c.name)));
        removed.push(c.name.clone());
    }
    let removed_images = remove_unused_images(engine, issue, None, reporter).await;
    let mut out = TeardownOutcome {
        issue: issue.to_string(),
        removed_containers: removed,
        removed_images,
        link_cleared: false,
        link_error: None,
    };
    if let (true, Some(t)) = (clear_link, tracker) {
        reporter.report(Event::Step(format!("clearing field `{field}` of {issue}")));
        match t.set_field(issue, field, None).await {
            Ok(_) => out.link_cleared = true,
            Err(e) => out.link_error = Some(e.to_string()),
        }
    }
    Ok(out)
}

/// The issue's bench: the container with the bench's name, else any running one of the issue.
pub async fn find_bench(engine: &dyn Engine, issue: &str) -> Result<Option<ContainerInfo>> {
    let mut containers = engine.containers(&issue_filter(issue)).await?;
    let name = container_name(issue);
    containers.sort_by_key(|c| (c.name != name, !c.running));
    Ok(containers.into_iter().next())
}

/// State, health, address, commit and age of the issue's bench (`None`: no bench).
pub async fn status(engine: &dyn Engine, issue: &str) -> Result<Option<BenchRecord>> {
    Ok(find_bench(engine, issue)
        .await?
        .map(|c| record_from(&c, now_unix())))
}

/// Re-publishes the address of the issue's running bench in the Tracker (the way out after
/// exit code 3). Returns the address.
pub async fn link(
    issue: &str,
    engine: &dyn Engine,
    tracker: &TrackerClient,
    field: &str,
    reporter: &SharedReporter,
) -> Result<std::result::Result<String, String>> {
    let bench = find_bench(engine, issue).await?.filter(|c| c.running);
    let Some(bench) = bench else {
        return Err(Error::usage(format!(
            "{issue} has no running bench to link; deploy it first (`benchctl deploy <branch>`)"
        )));
    };
    let url = record_from(&bench, now_unix()).url.ok_or_else(|| {
        Error::Engine(format!(
            "the bench of {issue} ({}) publishes no port; redeploy it",
            bench.name
        ))
    })?;
    reporter.report(Event::Step(format!("setting field `{field}` of {issue}")));
    Ok(match tracker.set_field(issue, field, Some(&url)).await {
        Ok(_) => Ok(url),
        Err(e) => Err(e.to_string()),
    })
}
