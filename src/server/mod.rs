//! `benchctl serve`: webhooks in (authenticated, acknowledged at once, queued durably), jobs
//! out (transitions, deploys, teardowns), `/healthz` and Prometheus `/metrics`.

pub mod admit;
mod asleep;
pub mod dashboard;
mod hosts;
pub mod idle;
pub mod jobs;
pub mod listen;
mod metrics;
pub mod proxy;
pub use metrics::Metrics;
pub mod queue;
mod schedule;
pub use schedule::GcSchedule;
pub mod store;
mod tunnel;
mod wake_rate;
pub mod webhook;

use crate::app::lock::LockOptions;
use crate::app::request::DeployRequest;
use crate::notify::{Notifier, Templates};
use crate::tracker::TrackerClient;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use queue::{Scheduler, Store};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use webhook::{KeyFinder, Refusal, Review, Secrets, Source};

/// Which status each review outcome moves the issue to (`None`: leave it).
#[derive(Debug, Clone)]
pub struct ReviewTargets {
    pub approved: Option<String>,
    pub changes_requested: Option<String>,
    pub rejected: Option<String>,
}

impl Default for ReviewTargets {
    fn default() -> Self {
        ReviewTargets {
            approved: Some("readyForTest".into()),
            changes_requested: Some("needsImprovement".into()),
            rejected: Some("needsImprovement".into()),
        }
    }
}

impl ReviewTargets {
    pub fn target(&self, review: Review) -> Option<&str> {
        match review {
            Review::Approved => self.approved.as_deref(),
            Review::ChangesRequested => self.changes_requested.as_deref(),
            Review::Rejected => self.rejected.as_deref(),
        }
    }
}

/// Everything `serve` runs with, resolved by the CLI.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub secrets: Secrets,
    pub state_dir: PathBuf,
    pub max_body: usize,
    pub max_parallel: usize,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub shutdown_grace: Duration,
    /// How long one job may run (`--job-timeout`).
    pub job_timeout: Duration,
    /// A request's headers must arrive within this long (`--header-timeout`).
    pub header_timeout: Duration,
    /// A delivery's body must arrive within this long (`--body-timeout`).
    pub body_timeout: Duration,
    /// Open connections at most (`--max-connections`).
    pub max_connections: usize,
    /// Repository name as the payloads carry it (`owner/name`, `PROJECT/slug`) -> clone URL or path.
    pub repos: HashMap<String, String>,
    pub issue_pattern: String,
    pub review_targets: ReviewTargets,
    pub review_comment: bool,
    /// GitHub `author_association`s whose reviews move issues (upper-case).
    pub review_associations: Vec<String>,
    pub closed_statuses: Vec<String>,
    /// Settings of every deploy (flags, environment, `--config`; each branch's `benchctl.toml`
    /// and the job's repo, branch and issue are added per job).
    pub deploy: DeployRequest,
    pub explicit: crate::settings::Layer,
    pub local: Option<crate::settings::Layer>,
    pub lock: LockOptions,
    pub templates: Templates,
    /// Where benches run.
    pub backend: crate::engine::Backend,
    /// The bench dashboard (`--dashboard`), and who may see it.
    pub dashboard: Option<dashboard::DashboardConfig>,
    /// serve's own clean-up (`--gc-interval`; `None`: off).
    pub gc: Option<schedule::GcSchedule>,
    /// Unused benches sleep (`--sleep-after`; `None`: never).
    pub sleep: Option<idle::SleepPolicy>,
    /// The benches' front door (`--proxy-listen`; `None`: none).
    pub proxy: Option<proxy::ProxyConfig>,
}

/// One log line on stderr, with a UTC time stamp; secrets redacted.
pub fn log(line: &str) {
    eprintln!(
        "{} {}",
        crate::clock::utc(crate::clock::now_unix()),
        crate::secret::redact(line)
    );
}

struct AppState {
    cfg: Arc<ServeConfig>,
    /// The engine `/metrics` reads the benches from.
    engine: crate::engine::Engine,
    keys: KeyFinder,
    store: Arc<Store>,
    scheduler: Arc<Scheduler>,
    metrics: Arc<Metrics>,
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

async fn hook(
    State(app): State<Arc<AppState>>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(source) = Source::ALL.into_iter().find(|s| s.name() == source) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no endpoint /hooks/{source}; use github, bitbucket, gitlab or tracker")}),
        );
    };
    let (status, outcome, body) = receive(&app, source, &headers, body).await;
    app.metrics.inc(
        "benchctl_webhook_requests_total",
        &[("source", source.name()), ("outcome", outcome)],
    );
    if !status.is_success() {
        log(&format!(
            "{} delivery refused ({}): {}",
            source.name(),
            status.as_u16(),
            body["error"].as_str().unwrap_or("")
        ));
    }
    answer(status, body)
}

/// Authenticates, parses and queues one delivery: (status, outcome label, answer body).
async fn receive(
    app: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: Body,
) -> (StatusCode, &'static str, serde_json::Value) {
    let err = |status, outcome, msg: String| (status, outcome, json!({ "error": msg }));
    if app.cfg.secrets.get(source).is_none() {
        return err(
            StatusCode::FORBIDDEN,
            "not_configured",
            format!(
                "{} webhooks are not accepted: {} is not set",
                source.name(),
                source.secret_var()
            ),
        );
    }
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        err(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {} bytes", app.cfg.max_body),
        )
    };
    if declared.is_some_and(|n| n > app.cfg.max_body) {
        return too_large();
    }
    // a body dripped byte by byte does not hold the connection past the deadline
    let bytes = match tokio::time::timeout(
        app.cfg.body_timeout,
        axum::body::to_bytes(body, app.cfg.max_body),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return too_large(),
        Err(_) => {
            return err(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the body did not arrive within {} s (--body-timeout)",
                    app.cfg.body_timeout.as_secs()
                ),
            )
        }
    };
    let unsigned_ping = source == Source::Bitbucket
        && webhook::is_bitbucket_ping(headers)
        && !headers.contains_key("x-hub-signature");
    if unsigned_ping {
        return (StatusCode::OK, "ping", json!({ "ping": true }));
    }
    match webhook::authenticate(source, &app.cfg.secrets, headers, &bytes) {
        Ok(()) => {}
        Err(Refusal::NotConfigured(m)) => return err(StatusCode::FORBIDDEN, "not_configured", m),
        Err(Refusal::Unauthenticated(m)) => {
            return err(StatusCode::UNAUTHORIZED, "unauthenticated", m)
        }
    }
    let parsed = match webhook::parse(source, headers, &bytes, &app.keys) {
        Ok(p) => p,
        Err(m) => return err(StatusCode::BAD_REQUEST, "bad_request", m),
    };
    if parsed.ping {
        return (StatusCode::OK, "ping", json!({ "ping": true }));
    }
    let mut parsed = parsed;
    for reason in admit::admit(&mut parsed, &app.cfg.repos, &app.cfg.review_associations) {
        app.metrics.inc(
            "benchctl_deliveries_refused_total",
            &[("source", source.name()), ("reason", reason.label())],
        );
    }
    if parsed.intents.is_empty() {
        log(&format!(
            "{} `{}` ignored: {}",
            source.name(),
            parsed.event,
            parsed.ignored.join("; ")
        ));
        return (
            StatusCode::OK,
            "ignored",
            json!({ "event": parsed.event, "ignored": parsed.ignored }),
        );
    }
    let delivery = webhook::delivery_id(source, headers);
    let store = app.store.clone();
    let intents = parsed.intents.clone();
    let d = delivery.clone();
    // a signed body is the delivery: replayed under a fresh id, it is still a duplicate
    let signed = matches!(source, Source::GitHub | Source::Bitbucket).then(|| bytes.clone());
    let accepted = tokio::task::spawn_blocking(move || {
        store.accept(
            source,
            d.as_deref(),
            signed.as_deref(),
            intents,
            crate::clock::now_unix(),
        )
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))
    .and_then(|r| r);
    match accepted {
        Ok(None) => (
            StatusCode::OK,
            "duplicate",
            json!({ "duplicate": true, "delivery": delivery }),
        ),
        Ok(Some(jobs)) => {
            let summary: Vec<serde_json::Value> = jobs
                .iter()
                .map(|j| json!({ "job": j.seq, "issue": j.issue(), "kind": j.intent.kind() }))
                .collect();
            for j in jobs {
                log(&format!(
                    "[{}] queued job {} ({} from {} `{}`, delivery {})",
                    j.issue(),
                    j.seq,
                    j.intent.kind(),
                    source.name(),
                    parsed.event,
                    if j.delivery.is_empty() {
                        "-"
                    } else {
                        &j.delivery
                    }
                ));
                app.scheduler.enqueue(j);
            }
            (
                StatusCode::ACCEPTED,
                "accepted",
                json!({ "event": parsed.event, "queued": summary, "ignored": parsed.ignored }),
            )
        }
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            format!("could not queue the delivery: {e}"),
        ),
    }
}

async fn healthz(State(app): State<Arc<AppState>>) -> Response {
    let (queued, running) = app.scheduler.depth();
    answer(
        StatusCode::OK,
        json!({ "status": "ok", "queued": queued, "running": running }),
    )
}

async fn prometheus(State(app): State<Arc<AppState>>) -> Response {
    let (queued, running) = app.scheduler.depth();
    let mut text = app.metrics.render(queued, running);
    // what the engine holds now (left out when it cannot be read: the counters still are)
    if let Ok(benches) = crate::app::inspect::list(&app.engine).await {
        text.push_str(&metrics::render_totals(&crate::app::inspect::Totals::of(
            &benches,
        )));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Binds the benches' front door and serves it beside the webhooks.
async fn start_proxy(
    pc: &proxy::ProxyConfig,
    limits: listen::ConnLimits,
    hosts: Arc<hosts::Hosts>,
    waker: Arc<idle::Waker>,
    clock: Arc<idle::Clock>,
    metrics: Arc<Metrics>,
) -> crate::Result<()> {
    let p = Arc::new(proxy::Proxy {
        hosts,
        clock,
        waker,
        metrics,
        cfg: pc.clone(),
        wake_rate: wake_rate::WakeRate::new(pc.wake_rate, pc.wake_rate_client),
    });
    let listener = tokio::net::TcpListener::bind(pc.listen)
        .await
        .map_err(|e| {
            crate::Error::usage(format!(
                "cannot listen on {} (--proxy-listen): {e}",
                pc.listen
            ))
        })?;
    log(&format!(
        "proxying the benches' addresses on http://{} (requests wake sleeping benches, held up to {}s)",
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        pc.wake_hold.as_secs()
    ));
    let routes = axum::Router::new().fallback(
        move |axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
              req: axum::extract::Request| proxy::handle(p.clone(), Some(peer), req),
    );
    tokio::spawn(listen::serve(
        listener,
        routes,
        limits,
        std::future::pending(),
    ));
    Ok(())
}

/// The deadlines and cap of serve's listeners: `--max-connections`, lowered where the open
/// files limit (raised to its hard limit first) could not hold every listener at its cap.
fn connection_limits(cfg: &ServeConfig) -> listen::ConnLimits {
    let (before, fds) = listen::raise_fd_limit();
    let cap = listen::fitted_cap(cfg.max_connections, fds);
    let raised = match before < fds {
        true => format!(" (raised from {before})"),
        false => String::new(),
    };
    log(&format!("open files at most: {fds}{raised}"));
    if cap < cfg.max_connections {
        log(&format!(
            "warning: {fds} open files hold {cap} connections a listener, not the {} of \
             --max-connections; raise the hard limit (ulimit -Hn, LimitNOFILE=) for more",
            cfg.max_connections
        ));
    }
    listen::ConnLimits {
        header_timeout: cfg.header_timeout,
        max_connections: cap,
    }
}

/// Runs the service until SIGTERM/SIGINT: binds, re-queues what the last run left, serves,
/// then stops accepting and lets running jobs finish (or abandons them after the grace time;
/// they stay queued for the next start).
pub async fn serve(
    cfg: ServeConfig,
    tracker: Option<TrackerClient>,
    notifier: Notifier,
    code_hosts: crate::feedback::CodeHosts,
) -> crate::Result<()> {
    let cfg = Arc::new(cfg);
    let limits = connection_limits(&cfg);
    let engine = cfg.backend.connect().await?;
    let opened = Store::open(&cfg.state_dir).map_err(|e| {
        crate::Error::usage(format!(
            "cannot use the state directory `{}`: {e}",
            cfg.state_dir.display()
        ))
    })?;
    let (store, leftover) = (Arc::new(opened.store), opened.jobs);
    let metrics = Arc::new(Metrics::default());
    for (job, path) in &opened.set_aside {
        log(&format!(
            "[{}] job {} ({}) was begun {} times without coming to an end; it is set aside as \
             {} and not run again (remove the file, or move it back to .json to retry)",
            job.issue(),
            job.seq,
            job.intent.kind(),
            job.starts,
            path.display()
        ));
        metrics.inc(
            "benchctl_jobs_total",
            &[("kind", job.intent.kind()), ("result", "set_aside")],
        );
    }
    let dashboard_tracker = tracker.clone();
    let asleep_links = code_hosts.dashboard_url.clone();
    let clock = Arc::new(idle::Clock::load(&cfg.state_dir));
    if let Some(policy) = &cfg.sleep {
        let engine = cfg.backend.connect().await?;
        idle::watch_idle(
            policy.clone(),
            engine,
            tracker.clone(),
            cfg.lock,
            clock.clone(),
            metrics.clone(),
        );
    }
    let waker = Arc::new(idle::Waker::new(
        cfg.backend.connect().await?,
        tracker.clone(),
        cfg.lock,
        cfg.deploy.bench.ready_timeout,
        clock.clone(),
        metrics.clone(),
        cfg.deploy.machine.cap.clone(),
    ));
    // which bench a host name is: for the front door and for the page Traefik shows
    let hosts = Arc::new(hosts::Hosts::new(cfg.backend.connect().await?));
    if let Some(pc) = &cfg.proxy {
        start_proxy(
            pc,
            limits,
            hosts.clone(),
            waker.clone(),
            clock.clone(),
            metrics.clone(),
        )
        .await?;
    }
    let worker = jobs::Worker {
        cfg: cfg.clone(),
        engine,
        tracker,
        notifier,
        code_hosts,
        metrics: metrics.clone(),
        clock,
    };
    let scheduler = Scheduler::new(
        store.clone(),
        Arc::new(worker),
        cfg.max_parallel,
        cfg.max_attempts,
        cfg.retry_base,
        cfg.job_timeout,
    );
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| crate::Error::usage(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| crate::Error::usage(e.to_string()))?;
    if !leftover.is_empty() {
        log(&format!(
            "{} job(s) left by the last run are queued again",
            leftover.len()
        ));
    }
    for job in leftover {
        scheduler.enqueue(job);
    }
    if let Some(gc) = &cfg.gc {
        schedule::clean_up(gc, store.clone(), scheduler.clone());
    }
    let app_state = Arc::new(AppState {
        engine: cfg.backend.connect().await?,
        keys: KeyFinder::new(&cfg.issue_pattern)?,
        cfg: cfg.clone(),
        store,
        scheduler: scheduler.clone(),
        metrics: metrics.clone(),
    });
    let mut app = axum::Router::new()
        .route("/hooks/{source}", post(hook))
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(app_state)
        .merge(asleep::routes(Arc::new(asleep::AsleepPage {
            hosts,
            dashboard_url: asleep_links,
            metrics: metrics.clone(),
        })));
    if let Some(dc) = &cfg.dashboard {
        let board = Arc::new(dashboard::Dashboard {
            engine: cfg.backend.connect().await?,
            scheduler: scheduler.clone(),
            cfg: dc.clone(),
            tracker: dashboard_tracker,
            summaries: Default::default(),
            waker: waker.clone(),
            backoff: Default::default(),
        });
        if dc.basic.is_some() {
            app = app.merge(dashboard::routes(board.clone(), true));
            log(&format!("dashboard on http://{local}/ (HTTP Basic auth)"));
        }
        if let Some(addr) = dc.listen {
            let own = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                crate::Error::usage(format!("cannot listen on {addr} for the dashboard: {e}"))
            })?;
            log(&format!(
                "dashboard on http://{} (loopback only)",
                own.local_addr().map(|a| a.to_string()).unwrap_or_default()
            ));
            // the same deadlines and cap as serve's own listener
            let routes = dashboard::routes(board, false);
            tokio::spawn(listen::serve(own, routes, limits, std::future::pending()));
        }
    }
    let configured: Vec<&str> = Source::ALL
        .into_iter()
        .filter(|s| cfg.secrets.get(*s).is_some())
        .map(Source::name)
        .collect();
    log(&format!(
        "listening on http://{local} (accepting: {}; state in {})",
        if configured.is_empty() {
            "none: set the webhook secrets".to_string()
        } else {
            configured.join(", ")
        },
        cfg.state_dir.display()
    ));
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let (name, _) = crate::signal::interrupted().await;
        let _ = signal_tx.send(name);
    });
    listen::serve(listener, app, limits, async move {
        let name = signal_rx.await.unwrap_or("shutdown");
        log(&format!("{name}: no longer accepting deliveries"));
    })
    .await;
    let (queued, running) = scheduler.depth();
    log(&format!(
        "stopping: {running} job(s) running, {queued} queued (kept for the next start); waiting up to {}s",
        cfg.shutdown_grace.as_secs()
    ));
    scheduler.shutdown(cfg.shutdown_grace).await;
    log("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_move_issues_to_their_configured_status() {
        let t = ReviewTargets::default();
        assert_eq!(t.target(Review::Approved), Some("readyForTest"));
        assert_eq!(t.target(Review::Rejected), Some("needsImprovement"));
        let none = ReviewTargets {
            approved: None,
            ..ReviewTargets::default()
        };
        assert_eq!(none.target(Review::Approved), None);
    }
}
