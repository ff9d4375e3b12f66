//! Deploy, list and teardown: the orchestration. It never prints; it reports [`Event`]s.

use crate::git::RepoSpec;
use crate::image::{self, BuildSpec};
use crate::lock::IssueLock;
use crate::naming::{container_name, image_repo, short_commit};
use crate::output::{Event, SharedReporter};
use crate::runtime::{labels, ContainerInfo, ContainerSpec, Engine, Limits};
use crate::tracker::TrackerClient;
use crate::{Error, Result};
use serde::Serialize;
use sha2::Digest;
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
    /// Rebuild and replace even when nothing changed, and deploy an older commit over a newer.
    pub force: bool,
    /// Random id labelled on what this deploy creates (cleanup after an interruption).
    pub deploy_id: String,
    /// Set once the new container passed readiness: only then may an interrupted deploy leave
    /// it as the bench (when the previous one is already gone).
    pub ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Where cached clones live.
    pub cache_dir: std::path::PathBuf,
    /// `--build-arg` values.
    pub build_args: std::collections::BTreeMap<String, String>,
    /// The Dockerfile stage to build (`--target`).
    pub target: Option<String>,
    /// Path the readiness probe asks (any answer below 500 counts for `/`, only 2xx/3xx for
    /// another path).
    pub health_path: String,
    /// The bench's environment.
    pub env: Vec<BenchEnv>,
    /// The bench's address as a template (`https://{issue}.bench.example.com`).
    pub url_template: Option<String>,
    /// Route through a reverse proxy instead of publishing a port.
    pub router: Option<Router>,
    /// The host of a remote engine (`DOCKER_HOST`), where published ports are probed.
    pub engine_host: Option<String>,
    /// The Dockerfile template to build with instead of the branch's Dockerfile.
    pub template: Option<crate::templates::Chosen>,
    /// The branch's head as read with its config just before (the read-only no-op check uses
    /// it; under the lock the head is asked for again).
    pub head_hint: Option<String>,
}

/// Traefik routing: the bench joins `network` and carries the router labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub network: String,
    pub entrypoint: Option<String>,
    pub cert_resolver: Option<String>,
}

impl Router {
    /// Traefik's labels for a bench answering on `port` at `host`.
    pub fn labels(&self, issue: &str, host: &str, port: u16) -> HashMap<String, String> {
        let name = format!("benchctl-{}", crate::naming::slug(issue, 60));
        let mut l = HashMap::new();
        l.insert("traefik.enable".to_string(), "true".to_string());
        l.insert("traefik.docker.network".to_string(), self.network.clone());
        // Traefik v3's swarm provider reads its own key (v2 in swarm mode reads the one above)
        l.insert("traefik.swarm.network".to_string(), self.network.clone());
        l.insert(
            format!("traefik.http.routers.{name}.rule"),
            format!("Host(`{host}`)"),
        );
        l.insert(format!("traefik.http.routers.{name}.service"), name.clone());
        if let Some(e) = &self.entrypoint {
            l.insert(
                format!("traefik.http.routers.{name}.entrypoints"),
                e.clone(),
            );
        }
        if let Some(r) = &self.cert_resolver {
            l.insert(
                format!("traefik.http.routers.{name}.tls"),
                "true".to_string(),
            );
            l.insert(
                format!("traefik.http.routers.{name}.tls.certresolver"),
                r.clone(),
            );
        }
        l.insert(
            format!("traefik.http.services.{name}.loadbalancer.server.port"),
            port.to_string(),
        );
        l
    }
}

/// One variable of a bench's environment. Values taken from benchctl's environment or an env
/// file are secrets: they reach the container and nothing else (no label, no output).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEnv {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EnvValue {
    /// Given on the command line or in a config file.
    Plain(String),
    /// Read from the environment or an env file.
    Secret(crate::secret::Secret),
}

impl BenchEnv {
    pub fn value(&self) -> &str {
        match &self.value {
            EnvValue::Plain(v) => v,
            EnvValue::Secret(s) => s.expose(),
        }
    }
}

/// Where a template's Dockerfile is put in the build context.
const TEMPLATE_DOCKERFILE: &str = ".benchctl.Dockerfile";

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
    pub action: Action,
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

/// How long to wait for another deploy of the issue, and how long a lock of a holder on
/// another machine lasts.
#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    pub timeout: Duration,
    pub lease: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout: crate::lock::DEFAULT_TIMEOUT,
            lease: crate::lock::DEFAULT_LEASE,
        }
    }
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new bench runs (first deploy or replacement).
    Deployed,
    /// The running bench already serves this commit with these settings: nothing changed.
    Unchanged,
    /// A newer commit is already deployed: this older one did not replace it.
    Skipped,
}

impl DeployRequest {
    /// This request's settings applied to one branch: a new deploy id and readiness flag.
    pub fn for_branch(&self, repo: RepoSpec, branch: &str, issue: &str) -> DeployRequest {
        DeployRequest {
            repo,
            branch: branch.to_string(),
            issue: issue.to_string(),
            deploy_id: format!("{:016x}", rand::random::<u64>()),
            ready: Default::default(),
            head_hint: None,
            ..self.clone()
        }
    }

    /// Hash of what shapes the image besides the commit (images are tagged and reused by it).
    pub fn build_hash(&self) -> String {
        let mut text = format!("b1|{}", self.dockerfile);
        if self.target.is_some() || !self.build_args.is_empty() {
            text.push_str(&format!("|{:?}|{:?}", self.target, self.build_args));
        }
        if let Some(t) = &self.template {
            text.push_str(&format!("|template|{}|{}", t.name, t.dockerfile));
        }
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..3])
    }

    /// Hash of everything besides the commit that shapes the bench: a no-op redeploy needs the
    /// same commit and the same settings.
    pub fn settings_hash(&self) -> String {
        let mut text = format!(
            "v1|{}|{:?}|{}|{}|{}|{}|{}",
            self.dockerfile,
            self.port,
            self.bind,
            self.public_host,
            self.limits.memory_bytes,
            self.limits.nano_cpus,
            self.limits.pids
        );
        let extra = self.health_path != "/"
            || !self.env.is_empty()
            || self.target.is_some()
            || !self.build_args.is_empty()
            || self.url_template.is_some()
            || self.router.is_some();
        if extra {
            text.push_str(&format!("|{:?}|{:?}", self.url_template, self.router));
            // values (secrets among them) only enter as part of this one-way hash
            let env: Vec<(&str, &str)> = self
                .env
                .iter()
                .map(|e| (e.name.as_str(), e.value()))
                .collect();
            text.push_str(&format!(
                "|{}|{}|{env:?}",
                self.health_path,
                self.build_hash()
            ));
        }
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
    }
}

/// The settings hash of a bench of `req` on `engine` (what the engine adds, e.g. a swarm's
/// publish mode, changes it too).
fn settings_of(req: &DeployRequest, engine: &dyn Engine) -> String {
    let shape = engine.shape();
    if shape.is_empty() {
        return req.settings_hash();
    }
    let text = format!("{}|{shape}", req.settings_hash());
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}

/// The commit the branch points at in the repository (`git ls-remote`, in a blocking task).
async fn branch_head(req: &DeployRequest) -> Result<Option<String>> {
    let repo = req.repo.clone();
    let branch = req.branch.clone();
    tokio::task::spawn_blocking(move || crate::git::remote_head(&repo, &branch))
        .await
        .map_err(|e| Error::Engine(format!("the ls-remote task failed: {e}")))?
}

/// The common no-op, decided by reading only (no lock, no write): nobody holds the issue's lock,
/// its one bench runs healthy with the branch's head and these settings, and the Tracker field
/// already holds its address. Anything else (`None`) goes the locked way, which may write.
async fn unchanged_at_a_glance(
    req: &DeployRequest,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
) -> Result<Option<DeployOutcome>> {
    let issue = req.issue.as_str();
    if req.force {
        return Ok(None);
    }
    // ask the git server and the engine at the same time (the head read with the branch's
    // config a moment ago is asked for only once)
    let head = async {
        match &req.head_hint {
            Some(h) => Ok(Some(h.clone())),
            None => branch_head(req).await,
        }
    };
    let state = async {
        let locked = engine
            .inspect(&crate::lock::lock_name(issue))
            .await?
            .is_some();
        Ok::<_, Error>((locked, benches(engine, Some(issue)).await?))
    };
    let (head, state) = tokio::join!(head, state);
    let (locked, existing) = state?;
    // a failing ls-remote is reported by the locked way
    let head = head.ok().flatten();
    let [cur] = existing.as_slice() else {
        return Ok(None);
    };
    let settings = settings_of(req, engine);
    if locked
        || cur.name != container_name(issue)
        || !cur.running
        || cur.health.as_deref() == Some("unhealthy")
        || cur.labels.get(labels::SETTINGS) != Some(&settings)
        || head.is_none()
        || cur.labels.get(labels::COMMIT) != head.as_ref()
    {
        return Ok(None);
    }
    let mut bench = reported(cur);
    let Some(url) = bench.url.clone() else {
        return Ok(None);
    };
    let link_skipped = match link_target(req, tracker) {
        Err(why) => Some(why),
        Ok(t) => match t.get_issue(issue).await {
            Ok(v) if v.get(&req.field).and_then(serde_json::Value::as_str) == Some(&url) => {
                bench.linked = Some(true);
                None
            }
            _ => return Ok(None),
        },
    };
    reporter.report(Event::Done(format!(
        "{issue} already serves commit {} with these settings: nothing to do",
        short_commit(&bench.commit)
    )));
    Ok(Some(DeployOutcome {
        bench,
        action: Action::Unchanged,
        link_skipped,
        link_error: None,
    }))
}

/// The Tracker this deploy links through, or why it does not link (which is not an error).
fn link_target<'a>(
    req: &DeployRequest,
    tracker: Option<&'a TrackerClient>,
) -> std::result::Result<&'a TrackerClient, String> {
    match (req.link, tracker) {
        (false, _) => Err("--no-link was given".to_string()),
        (true, None) => Err("no Tracker is configured".to_string()),
        (true, Some(t)) => Ok(t),
    }
}

/// The running bench `cur` as a deploy reports it (not yet linked).
fn reported(cur: &ContainerInfo) -> BenchRecord {
    BenchRecord {
        state: None,
        age_seconds: None,
        linked: Some(false),
        ..record_from(cur, now_unix())
    }
}

/// The outcome of a no-op redeploy: nothing rebuilt or restarted; the link re-set only if the
/// field holds something else.
async fn unchanged(
    req: &DeployRequest,
    cur: &ContainerInfo,
    head: &str,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
) -> Result<DeployOutcome> {
    let issue = req.issue.as_str();
    let mut bench = reported(cur);
    reporter.report(Event::Done(format!(
        "{issue} already serves commit {} with these settings: nothing to do",
        short_commit(head)
    )));
    let (link_skipped, link_error) = match (link_target(req, tracker), bench.url.clone()) {
        (Err(why), _) => (Some(why), None),
        (Ok(_), None) => (None, Some("the bench publishes no port".into())),
        (Ok(t), Some(url)) => match ensure_link(t, issue, &req.field, &url).await {
            Ok(changed) => {
                bench.linked = Some(true);
                if changed {
                    reporter.report(Event::Done(format!(
                        "{issue}: field `{}` = {url} (it differed)",
                        req.field
                    )));
                }
                (None, None)
            }
            Err(e) => (None, Some(e)),
        },
    };
    Ok(DeployOutcome {
        bench,
        action: Action::Unchanged,
        link_skipped,
        link_error,
    })
}

/// The issue's benches (containers with its labels, lock containers excluded).
pub async fn benches(engine: &dyn Engine, issue: Option<&str>) -> Result<Vec<ContainerInfo>> {
    let filter = match issue {
        Some(i) => labels::issue_filter(i),
        None => vec![format!("{}=true", labels::MANAGED)],
    };
    Ok(engine
        .containers(&filter)
        .await?
        .into_iter()
        .filter(|c| !c.labels.contains_key(labels::ROLE))
        .collect())
}

/// Deploys under the issue's lock: one deploy or teardown of an issue at a time.
pub async fn deploy(
    req: &DeployRequest,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
    lock: LockOptions,
) -> Result<DeployOutcome> {
    if let Some(outcome) = unchanged_at_a_glance(req, engine, tracker, reporter).await? {
        return Ok(outcome);
    }
    let held = IssueLock::acquire(
        engine,
        &req.issue,
        &format!("deploy of {}", req.branch),
        lock.timeout,
        lock.lease,
        reporter,
    )
    .await?;
    let result = checked_deploy(req, engine, tracker, reporter, &held).await;
    let (outcome, commit, message) = match &result {
        Ok(o) if o.link_error.is_some() => (
            "not-linked",
            o.bench.commit.clone(),
            o.link_error.clone().unwrap_or_default(),
        ),
        Ok(o) => (
            match o.action {
                Action::Deployed => "deployed",
                Action::Unchanged => "unchanged",
                Action::Skipped => "skipped",
            },
            o.bench.commit.clone(),
            String::new(),
        ),
        Err(e) => ("failed", String::new(), e.to_string()),
    };
    let record = LastDeploy {
        result: outcome.to_string(),
        at: now_unix(),
        branch: req.branch.clone(),
        repo: req.repo.location.clone(),
        commit,
        message: crate::secret::redact(&message),
    };
    if let Err(e) = record.store(engine, &req.issue).await {
        reporter.report(Event::Warn(format!(
            "could not record the result of this deploy: {e}"
        )));
    }
    if let Err(e) = held.release(engine).await {
        reporter.report(Event::Warn(format!(
            "could not release the lock of {}: {e}",
            req.issue
        )));
    }
    result
}

/// The result of an issue's last deploy, kept as labels of a never-started marker container
/// `benchctl-result-<issue>` (so `status` can tell it, and no state lives outside the engine).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastDeploy {
    /// `deployed`, `unchanged`, `skipped`, `not-linked` or `failed`.
    pub result: String,
    /// Unix seconds.
    pub at: u64,
    pub branch: String,
    #[serde(skip)]
    pub repo: String,
    pub commit: String,
    pub message: String,
}

const RESULT: &str = "benchctl.result";
const RESULT_AT: &str = "benchctl.result.at";
const RESULT_MESSAGE: &str = "benchctl.result.message";

fn result_name(issue: &str) -> String {
    format!("benchctl-result-{}", crate::naming::slug(issue, 60))
}

impl LastDeploy {
    async fn store(&self, engine: &dyn Engine, issue: &str) -> Result<()> {
        let name = result_name(issue);
        let mut l = HashMap::new();
        l.insert(labels::MANAGED.to_string(), "true".to_string());
        l.insert(labels::ROLE.to_string(), "result".to_string());
        l.insert(labels::ISSUE.to_string(), issue.to_string());
        l.insert(labels::BRANCH.to_string(), label_value(&self.branch));
        l.insert(labels::REPO.to_string(), label_value(&self.repo));
        l.insert(labels::COMMIT.to_string(), self.commit.clone());
        l.insert(RESULT.to_string(), self.result.clone());
        l.insert(RESULT_AT.to_string(), self.at.to_string());
        l.insert(
            RESULT_MESSAGE.to_string(),
            self.message.chars().take(1000).collect(),
        );
        if let Some(old) = engine.inspect(&name).await? {
            engine.remove(&old.id).await?;
        }
        engine.create_marker(&name, &l).await?;
        Ok(())
    }

    pub async fn load(engine: &dyn Engine, issue: &str) -> Result<Option<LastDeploy>> {
        Ok(engine.inspect(&result_name(issue)).await?.map(|c| {
            let get = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
            LastDeploy {
                result: get(RESULT),
                at: get(RESULT_AT).parse().unwrap_or(0),
                branch: get(labels::BRANCH),
                repo: get(labels::REPO),
                commit: get(labels::COMMIT),
                message: get(RESULT_MESSAGE),
            }
        }))
    }

    pub async fn forget(engine: &dyn Engine, issue: &str) -> Result<()> {
        if let Some(c) = engine.inspect(&result_name(issue)).await? {
            engine.remove(&c.id).await?;
        }
        Ok(())
    }
}

/// Runs the deploy while one `GET /v3/issues/<KEY>` checks, concurrently, that the token is
/// good and the issue exists: a refusal (401, 403, 404) stops the deploy at once, removes what
/// it started, and is a configuration error (exit 2). A Tracker that cannot be reached only
/// warns: linking will tell.
async fn checked_deploy(
    req: &DeployRequest,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
    held: &IssueLock,
) -> Result<DeployOutcome> {
    let check = async {
        match (req.link, tracker) {
            (true, Some(t)) => t.get_issue(&req.issue).await.map(|_| ()),
            _ => Ok(()),
        }
    };
    let work = deploy_locked(req, engine, tracker, reporter, held);
    tokio::pin!(check, work);
    let mut checked = false;
    loop {
        tokio::select! {
            r = &mut work => return r,
            c = &mut check, if !checked => {
                checked = true;
                match c {
                    Ok(()) => {}
                    Err(e) if e.is_usage() => {
                        let ready = req.ready.load(std::sync::atomic::Ordering::SeqCst);
                        remove_candidates(engine, &req.issue, &req.deploy_id, ready).await;
                        return Err(Error::Tracker(e));
                    }
                    Err(e) => reporter.report(Event::Warn(format!(
                        "could not check {} in the Tracker ({e}); deploying anyway",
                        req.issue
                    ))),
                }
            }
        }
    }
}

/// Re-sets the Tracker field to `url` when it holds something else (no-op redeploys).
async fn ensure_link(
    tracker: &TrackerClient,
    issue: &str,
    field: &str,
    url: &str,
) -> std::result::Result<bool, String> {
    let current = tracker.get_issue(issue).await.map_err(|e| e.to_string())?;
    if current.get(field).and_then(serde_json::Value::as_str) == Some(url) {
        return Ok(false);
    }
    tracker
        .set_field(issue, field, Some(url))
        .await
        .map_err(|e| e.to_string())?;
    Ok(true)
}

async fn deploy_locked(
    req: &DeployRequest,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    reporter: &SharedReporter,
    held: &IssueLock,
) -> Result<DeployOutcome> {
    let issue = req.issue.as_str();
    let final_name = container_name(issue);
    let settings = settings_of(req, engine);
    let existing = benches(engine, Some(issue)).await?;
    let current = existing
        .iter()
        .find(|c| c.name == final_name && c.running)
        .cloned();

    // What the branch points at now, without fetching anything.
    let head = branch_head(req).await?;
    let Some(head) = head else {
        return Err(Error::BranchNotFound {
            branch: req.branch.clone(),
            repo: req.repo.location.clone(),
        });
    };

    // No-op: the running bench already serves the branch's head with these settings.
    if let (false, Some(cur)) = (req.force, &current) {
        let same_settings = cur.labels.get(labels::SETTINGS) == Some(&settings);
        let healthy = cur.health.as_deref() != Some("unhealthy");
        if same_settings && healthy && cur.labels.get(labels::COMMIT) == Some(&head) {
            return unchanged(req, cur, &head, tracker, reporter).await;
        }
    }

    // Something will be started: can it be, here?
    engine.check_can_run().await?;

    // An image of this commit and build settings already exists: no fetch, no build.
    let build_hash = req.build_hash();
    let image_tag = |commit: &str| {
        format!(
            "{}:{}-{build_hash}",
            image_repo(issue),
            short_commit(commit)
        )
    };
    let reusable = if req.force {
        None
    } else {
        engine.image(&image_tag(&head)).await?.and_then(|img| {
            let time = img.labels.get(labels::COMMIT_TIME)?.parse::<i64>().ok()?;
            (img.labels.get(labels::COMMIT) == Some(&head)).then_some((img, time))
        })
    };
    let (commit, commit_time, checkout) = match &reusable {
        Some((_, time)) => (head.clone(), *time, None),
        None => {
            reporter.report(Event::Step(format!(
                "fetching branch `{}` of {} for {issue}",
                req.branch, req.repo
            )));
            let checkout = tempfile::Builder::new()
                .prefix("benchctl-checkout-")
                .tempdir()
                .map_err(|e| Error::Engine(format!("cannot create a temporary directory: {e}")))?;
            let fetched = {
                let repo = req.repo.clone();
                let branch = req.branch.clone();
                let dest = checkout.path().to_path_buf();
                let cache = req.cache_dir.clone();
                let rep = reporter.clone();
                let dockerfile = crate::dockerignore::go_clean(&req.dockerfile);
                tokio::task::spawn_blocking(move || {
                    crate::git::fetch_branch(&repo, &branch, &cache, &dest, &dockerfile, &rep)
                })
                .await
                .map_err(|e| Error::Engine(format!("the fetch task failed: {e}")))??
            };
            reporter.report(Event::Done(format!(
                "commit {}",
                short_commit(&fetched.commit)
            )));
            (fetched.commit, fetched.time, Some(checkout))
        }
    };

    // Newest wins: an older commit never replaces a newer one (unless --force).
    if let (false, Some(cur)) = (req.force, &current) {
        let cur_time: Option<i64> = cur
            .labels
            .get(labels::COMMIT_TIME)
            .and_then(|t| t.parse().ok());
        if cur_time.is_some_and(|t| t > commit_time) {
            let bench = reported(cur);
            let reason = format!(
                "{issue} already runs commit {} which is newer than {}; not replacing it \
                 (--force deploys the older one anyway)",
                short_commit(&bench.commit),
                short_commit(&commit)
            );
            reporter.report(Event::Warn(reason.clone()));
            return Ok(DeployOutcome {
                bench,
                action: Action::Skipped,
                link_skipped: Some(reason),
                link_error: None,
            });
        }
    }

    let tag = image_tag(&commit);
    let mut base_labels = HashMap::new();
    base_labels.insert(labels::MANAGED.to_string(), "true".to_string());
    base_labels.insert(labels::ISSUE.to_string(), issue.to_string());
    base_labels.insert(labels::COMMIT.to_string(), commit.clone());
    let image_id = match (reusable, checkout) {
        (Some((img, _)), _) => {
            reporter.report(Event::Done(format!(
                "image {tag} of commit {} exists: nothing to build",
                short_commit(&commit)
            )));
            img.id
        }
        (None, Some(checkout)) => {
            let src = checkout.path().join("src");
            let dockerfile = match &req.template {
                Some(t) => {
                    reporter.report(Event::Info(format!(
                        "building with template `{}` ({}; {})",
                        t.name, t.reason, t.source
                    )));
                    std::fs::write(src.join(TEMPLATE_DOCKERFILE), &t.dockerfile).map_err(|e| {
                        Error::Context {
                            issue: issue.to_string(),
                            message: format!("cannot write the template's Dockerfile: {e}"),
                        }
                    })?;
                    TEMPLATE_DOCKERFILE.to_string()
                }
                None => image::dockerfile_path(&src, &req.dockerfile, &req.branch)?,
            };
            let mut image_labels = base_labels.clone();
            image_labels.insert(labels::COMMIT_TIME.to_string(), commit_time.to_string());
            let spec = BuildSpec {
                dockerfile,
                tag: tag.clone(),
                labels: image_labels,
                build_args: req.build_args.clone(),
                target: req.target.clone(),
            };
            reporter.report(Event::Step(format!("building {tag}")));
            let id = image::build(engine, &src, &spec, issue, &req.branch, reporter).await?;
            drop(checkout);
            reporter.report(Event::Done(format!("built {tag}")));
            id
        }
        (None, None) => unreachable!("a checkout is made whenever no image is reused"),
    };

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

    let name = if existing.iter().any(|c| c.name == final_name) {
        format!("{final_name}-next-{:08x}", rand::random::<u32>())
    } else {
        final_name.clone()
    };
    let mut container_labels = base_labels;
    container_labels.insert(labels::BRANCH.to_string(), label_value(&req.branch));
    container_labels.insert(labels::REPO.to_string(), label_value(&req.repo.location));
    container_labels.insert(labels::PORT.to_string(), port.to_string());
    container_labels.insert(labels::PUBLIC_HOST.to_string(), req.public_host.clone());
    container_labels.insert(labels::DEPLOYED_AT.to_string(), now_unix().to_string());
    container_labels.insert(labels::DEPLOY_ID.to_string(), req.deploy_id.clone());
    container_labels.insert(labels::COMMIT_TIME.to_string(), commit_time.to_string());
    container_labels.insert(labels::SETTINGS.to_string(), settings);
    container_labels.insert(labels::FIELD.to_string(), req.field.clone());
    if let Some(t) = &req.url_template {
        container_labels.insert(labels::URL_TEMPLATE.to_string(), t.clone());
    }
    if let (Some(router), Some(t)) = (&req.router, &req.url_template) {
        let url = crate::naming::render_url(
            t,
            &crate::naming::UrlValues {
                issue,
                branch: &req.branch,
                commit: &commit,
                port: None,
            },
        )?;
        container_labels.extend(router.labels(issue, crate::naming::url_host(&url), port));
    }
    let cspec = ContainerSpec {
        name: name.clone(),
        image: tag.clone(),
        labels: container_labels,
        container_port: port,
        bind: req.bind.clone(),
        limits: req.limits.clone(),
        env: req
            .env
            .iter()
            .map(|e| format!("{}={}", e.name, e.value()))
            .collect(),
        network: req.router.as_ref().map(|r| r.network.clone()),
        replaces: existing
            .iter()
            .find(|c| c.name == final_name)
            .map(|c| c.id.clone()),
        health_path: req.health_path.clone(),
        ready_timeout: req.ready_timeout,
    };
    reporter.report(Event::Step(format!(
        "starting the new bench of {issue} (port {port})"
    )));
    let id = engine.run(&cspec).await?;

    // a remote engine publishes on its own host; a local one on the bind address
    let probe_host = match (req.bind.as_str(), &req.engine_host) {
        ("0.0.0.0" | "" | "::", Some(remote)) => remote.clone(),
        ("0.0.0.0" | "", None) => "127.0.0.1".to_string(),
        ("::", None) => "::1".to_string(),
        (other, _) => other.to_string(),
    };
    reporter.report(Event::Step(format!(
        "waiting for {issue} to answer (up to {} s)",
        req.ready_timeout.as_secs()
    )));
    let probe = match &req.router {
        Some(_) => Probe::Direct(port),
        None => Probe::Published(probe_host),
    };
    let (host_port, node) = match wait_ready(
        engine,
        &id,
        &req.deploy_id,
        &probe,
        &req.health_path,
        req.ready_timeout,
    )
    .await
    {
        Ok(p) => p,
        Err(reason) => {
            let logs = engine.logs_tail(&id, 20).await.unwrap_or_default();
            engine.discard(&id).await?;
            return Err(Error::NotReady {
                issue: issue.to_string(),
                reason,
                logs,
                kept_old: current.is_some(),
            });
        }
    };
    req.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    let url = bench_address(
        node.as_deref().unwrap_or(&req.public_host),
        host_port,
        req.url_template.as_deref(),
        issue,
        &req.branch,
        &commit,
    );
    reporter.report(Event::Done(format!("{issue} answers at {url}")));

    // Fencing: only the lock's holder may switch benches.
    if !held.still_held(engine).await? {
        engine.discard(&id).await?;
        return Err(Error::Engine(format!(
            "the lock of {issue} was broken while this deploy ran (it outlived --lock-lease); \
             the new version was removed and the running bench left as it was"
        )));
    }
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
    let (link_skipped, link_error) = match link_target(req, tracker) {
        Err(why) => (Some(why), None),
        Ok(t) => {
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
        action: Action::Deployed,
        link_skipped,
        link_error,
    })
}

/// After a deploy was interrupted (its future dropped): removes what it half-created and
/// keeps the previous bench; if the new container was ready and the previous bench already
/// removed, the new one stays as the bench. Releases the lock when this process holds it.
/// Returns what was done.
pub async fn recover_interrupted(req: &DeployRequest, engine: &dyn Engine) -> String {
    let ready = req.ready.load(std::sync::atomic::Ordering::SeqCst);
    let issue = req.issue.as_str();
    let mut done = remove_candidates(engine, issue, &req.deploy_id, ready).await;
    if crate::lock::release_if_mine(engine, issue).await {
        done.push("released the lock".to_string());
    }
    if done.is_empty() {
        "nothing was left behind".to_string()
    } else {
        done.join("; ")
    }
}

/// Removes what the deploy `deploy_id` created, unless it was `ready` and the previous bench is
/// already gone (then its new container stays as the bench). Says what it did.
async fn remove_candidates(
    engine: &dyn Engine,
    issue: &str,
    deploy_id: &str,
    ready: bool,
) -> Vec<String> {
    let mut done = Vec::new();
    if let Ok(all) = benches(engine, Some(issue)).await {
        let (ours, others): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|c| c.labels.get(labels::DEPLOY_ID).map(String::as_str) == Some(deploy_id));
        for c in &ours {
            if ready && others.is_empty() && c.running {
                let final_name = container_name(issue);
                if c.name != final_name && engine.rename(&c.id, &final_name).await.is_ok() {
                    done.push(format!("kept the new bench as {final_name}"));
                }
            } else if engine.discard(&c.id).await.is_ok() {
                done.push(format!("removed the unfinished container {}", c.name));
            }
        }
        if !others.is_empty() {
            done.push("the previous bench keeps running".to_string());
        }
    }
    done
}

/// Where readiness is probed: the published port on the host, or the container's own address
/// on its network (routed benches publish nothing) with the container port.
enum Probe {
    Published(String),
    Direct(u16),
}

/// A bench's address: its URL template rendered, else `http://<public host>:<host port>/`.
pub fn bench_address(
    public_host: &str,
    host_port: Option<u16>,
    template: Option<&str>,
    issue: &str,
    branch: &str,
    commit: &str,
) -> String {
    let rendered = template.and_then(|t| {
        crate::naming::render_url(
            t,
            &crate::naming::UrlValues {
                issue,
                branch,
                commit,
                port: host_port,
            },
        )
        .ok()
    });
    match (rendered, host_port) {
        (Some(u), _) => u,
        (None, Some(p)) if !public_host.is_empty() => bench_url(public_host, p),
        _ => String::new(),
    }
}

/// Waits until the container is healthy (with a HEALTHCHECK) or answers HTTP (without one);
/// a published port must also accept connections. Returns the host port and the host the
/// engine placed it on (when it knows), or why it never became ready.
async fn wait_ready(
    engine: &dyn Engine,
    id: &str,
    deploy_id: &str,
    probe: &Probe,
    health_path: &str,
    timeout: Duration,
) -> std::result::Result<(Option<u16>, Option<String>), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last_problem: String;
    let mut note: Option<String> = None;
    // since when the engine has called it healthy while its published port does not answer
    let mut healthy_unreachable: Option<Instant> = None;
    loop {
        let info = engine
            .inspect(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the container disappeared")?;
        note = info.reach_note.clone().or(note);
        if info.labels.get(labels::DEPLOY_ID).map(String::as_str) != Some(deploy_id) {
            // an engine that updates in place (swarm) went back to the previous version
            return Err(format!(
                "the new version failed and the engine went back to the previous one ({})",
                info.state
            ));
        }
        if !info.running || info.restarts > 0 || info.state == "restarting" {
            return Err(match info.exit_code {
                Some(code) if !info.running || info.restarts > 0 => {
                    format!("the container exited with code {code}")
                }
                _ => format!("the container is {}", info.state),
            });
        }
        let health = info.health.as_deref();
        let target = match (probe, health) {
            // not started yet (e.g. a swarm task being scheduled): nothing to probe
            (_, Some("starting")) if info.host_port.is_none() && info.ip.is_none() => None,
            (Probe::Published(host), _) => {
                let port = info.host_port.ok_or("the engine published no host port")?;
                let host = info.host.clone().unwrap_or_else(|| host.clone());
                let shown = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                Some((Some(port), format!("{shown}:{port}")))
            }
            (Probe::Direct(port), _) => match (&info.ip, health) {
                (Some(ip), _) => Some((None, format!("{ip}:{port}"))),
                // a swarm task's address is not reachable from here: its health check tells
                (None, Some(_)) => Some((None, String::new())),
                (None, None) => {
                    return Err("it has no address on its network that benchctl can reach, \
                                and no HEALTHCHECK"
                        .into())
                }
            },
        };
        let placed = info.host.clone();
        match (health, target) {
            (Some("unhealthy"), _) => return Err("its HEALTHCHECK reports unhealthy".into()),
            (_, None) => last_problem = info.state.clone(),
            (Some("healthy"), Some((host_port, address))) => {
                if matches!(probe, Probe::Direct(_)) {
                    return Ok((host_port, placed));
                }
                // healthy inside; the published port must answer from outside too
                match http
                    .get(format!("http://{address}{health_path}"))
                    .send()
                    .await
                {
                    Ok(_) => return Ok((host_port, placed)),
                    Err(e) => {
                        last_problem = format!(
                            "it is healthy, but its published port does not answer at \
                             {address} ({e})"
                        );
                        let since = *healthy_unreachable.get_or_insert_with(Instant::now);
                        if note.is_some() && since.elapsed() > Duration::from_secs(5) {
                            return Err(format!("{last_problem}; {}", note.unwrap_or_default()));
                        }
                    }
                }
            }
            (Some(_), _) => last_problem = "its HEALTHCHECK has not passed yet".into(),
            (None, Some((host_port, address))) => {
                let url = format!("http://{address}{health_path}");
                match http.get(&url).send().await {
                    // any answer shows the server is up; a health path must say it is well
                    Ok(r) if health_path == "/" && r.status().as_u16() < 500 => {
                        return Ok((host_port, placed))
                    }
                    Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                        return Ok((host_port, placed))
                    }
                    Ok(r) => {
                        last_problem = format!("{health_path} answers {} at {address}", r.status())
                    }
                    Err(e) => last_problem = format!("no HTTP answer at {address} ({e})"),
                }
            }
        }
        if Instant::now() >= deadline {
            let hint = note.map(|n| format!("; {n}")).unwrap_or_default();
            return Err(format!(
                "not ready within {} s: {last_problem}{hint}; raise --ready-timeout if it needs \
                 longer",
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
    let Ok(images) = engine.images(&labels::issue_filter(issue)).await else {
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
    let url = Some(bench_address(
        c.host.as_deref().unwrap_or(&l(labels::PUBLIC_HOST)),
        c.host_port,
        c.labels.get(labels::URL_TEMPLATE).map(String::as_str),
        &l(labels::ISSUE),
        &l(labels::BRANCH),
        &l(labels::COMMIT),
    ))
    .filter(|u| !u.is_empty());
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
    let containers = benches(engine, None).await?;
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
    lock: LockOptions,
) -> Result<TeardownOutcome> {
    let held = IssueLock::acquire(
        engine,
        issue,
        "teardown",
        lock.timeout,
        lock.lease,
        reporter,
    )
    .await?;
    let result = teardown_locked(issue, engine, tracker, field, clear_link, reporter).await;
    if let Err(e) = held.release(engine).await {
        reporter.report(Event::Warn(format!(
            "could not release the lock of {issue}: {e}"
        )));
    }
    result
}

async fn teardown_locked(
    issue: &str,
    engine: &dyn Engine,
    tracker: Option<&TrackerClient>,
    field: &str,
    clear_link: bool,
    reporter: &SharedReporter,
) -> Result<TeardownOutcome> {
    reporter.report(Event::Step(format!("tearing down {issue}")));
    let containers = benches(engine, Some(issue)).await?;
    let mut removed = Vec::new();
    for c in &containers {
        engine.remove(&c.id).await?;
        reporter.report(Event::Done(format!("removed container {}", c.name)));
        removed.push(c.name.clone());
    }
    let removed_images = remove_unused_images(engine, issue, None, reporter).await;
    LastDeploy::forget(engine, issue).await?;
    let mut out = TeardownOutcome {
        issue: issue.to_string(),
        removed_containers: removed,
        removed_images,
        link_cleared: false,
        link_error: None,
    };
    // the field the bench was linked in (a branch's config may name another than the default)
    let field = containers
        .iter()
        .find_map(|c| c.labels.get(labels::FIELD).cloned())
        .unwrap_or_else(|| field.to_string());
    let field = field.as_str();
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
    let mut containers = benches(engine, Some(issue)).await?;
    let name = container_name(issue);
    containers.sort_by_key(|c| (c.name != name, !c.running));
    Ok(containers.into_iter().next())
}

/// What `status` shows: the bench (if any) and the last deploy's result (if recorded).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub issue: String,
    pub bench: Option<BenchRecord>,
    pub last_deploy: Option<LastDeploy>,
}

/// State, health, address, commit and age of the issue's bench, and its last deploy's result.
pub async fn status(engine: &dyn Engine, issue: &str) -> Result<Status> {
    let bench = find_bench(engine, issue)
        .await?
        .map(|c| record_from(&c, now_unix()));
    Ok(Status {
        issue: issue.to_string(),
        bench,
        last_deploy: LastDeploy::load(engine, issue).await?,
    })
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
