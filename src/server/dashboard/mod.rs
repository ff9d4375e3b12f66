//! The bench dashboard (`serve --dashboard`): `/` lists every bench (issue linked to the
//! Tracker, branch, commit, state and health, address, age, last deploy and its error) and the
//! job queue; `/bench/<KEY>` shows one bench's services, last deploy and last output lines
//! (redacted). It shows logs, so it is never open: behind HTTP Basic auth on serve's listener
//! (`BENCHCTL_DASHBOARD_PASSWORD`), or on a loopback listener of its own
//! (`--dashboard-listen`).

pub mod guard;
pub mod view;

use crate::app::inspect;
use crate::app::record::LastDeploy;
use crate::engine::Engine;
use crate::secret::Secret;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Who may see the dashboard.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// HTTP Basic credentials on serve's own listener (`None`: not served there).
    pub basic: Option<(String, Secret)>,
    /// A loopback listener of its own, without credentials.
    pub listen: Option<std::net::SocketAddr>,
    /// The Tracker's web address (`https://tracker.yandex.ru`): issues link to `<it>/<KEY>`.
    pub tracker_web: String,
    /// serve's `--ttl`: a bench not redeployed for this long is removed by the clean-up.
    pub ttl: Option<std::time::Duration>,
}

/// What the pages read.
pub struct Dashboard {
    pub engine: Engine,
    pub scheduler: Arc<super::queue::Scheduler>,
    pub cfg: DashboardConfig,
    /// The Tracker, for the issues' summaries (none: no summaries).
    pub tracker: Option<crate::tracker::TrackerClient>,
    /// Summaries read recently: issue -> (when, summary).
    pub summaries:
        std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, String)>>,
    /// Wakes a sleeping bench (the bench page's button).
    pub waker: Arc<super::idle::Waker>,
    /// Failed Basic attempts per client.
    pub backoff: guard::Backoff,
}

/// How long a summary read from the Tracker is shown before it is read again.
const SUMMARY_FRESH: std::time::Duration = std::time::Duration::from_secs(300);

impl Dashboard {
    /// The summaries of `issues` the Tracker gives within 2 s (cached for 5 minutes); an issue
    /// the Tracker does not answer for has none.
    async fn summaries(&self, issues: &[String]) -> std::collections::HashMap<String, String> {
        let lock = || self.summaries.lock().unwrap_or_else(|p| p.into_inner());
        let missing: Vec<String> = {
            let cache = lock();
            issues
                .iter()
                .filter(|i| {
                    cache
                        .get(*i)
                        .is_none_or(|(at, _)| at.elapsed() > SUMMARY_FRESH)
                })
                .take(50)
                .cloned()
                .collect()
        };
        if let (Some(t), false) = (&self.tracker, missing.is_empty()) {
            let asks = missing.iter().map(|i| async move {
                let v = t.get_issue(i).await.ok()?;
                Some((i.clone(), v["summary"].as_str()?.to_string()))
            });
            let all = futures_util::future::join_all(asks);
            if let Ok(found) = tokio::time::timeout(std::time::Duration::from_secs(2), all).await {
                let mut cache = lock();
                for (i, s) in found.into_iter().flatten() {
                    cache.insert(i, (std::time::Instant::now(), s));
                }
            }
        }
        let cache = lock();
        issues
            .iter()
            .filter_map(|i| Some((i.clone(), cache.get(i)?.1.clone())))
            .collect()
    }
}

/// Whether `headers` carry the dashboard's Basic credentials (compared in constant time).
fn authorized(headers: &HeaderMap, user: &str, password: &Secret) -> bool {
    use base64::Engine as _;
    let Some(given) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
    else {
        return false;
    };
    let want = format!("{user}:{}", password.expose());
    given.len() == want.len()
        && given
            .iter()
            .zip(want.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            axum::http::header::WWW_AUTHENTICATE,
            "Basic realm=\"benchctl dashboard\", charset=\"UTF-8\"",
        )],
        "the dashboard needs the credentials of BENCHCTL_DASHBOARD_USER / BENCHCTL_DASHBOARD_PASSWORD\n",
    )
        .into_response()
}

/// Whether a request may see the dashboard; the answer when it may not. `with_auth`: serve's
/// own listener (the Basic credentials, with a back-off per client); else the loopback
/// listener (a loopback `Host` only).
fn admit(
    d: &Dashboard,
    with_auth: bool,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Option<Response> {
    if !with_auth {
        return (!guard::loopback_host(headers)).then(guard::misdirected);
    }
    let Some((user, password)) = &d.cfg.basic else {
        return Some(refused());
    };
    let now = std::time::Instant::now();
    if let Some(wait) = d.backoff.waiting(peer.ip(), now) {
        return Some(guard::wait_answer(wait));
    }
    if authorized(headers, user, password) {
        d.backoff.succeeded(peer.ip());
        return None;
    }
    // a request without credentials is a browser asking for them, not a guess
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        d.backoff.failed(peer.ip(), now);
    }
    Some(refused())
}

/// The routes; `with_auth`: behind the Basic credentials (serve's own listener).
pub fn routes(d: Arc<Dashboard>, with_auth: bool) -> axum::Router {
    axum::Router::new()
        .route(
            "/",
            axum::routing::get(
                move |State(d): State<Arc<Dashboard>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      headers: HeaderMap| async move {
                    if let Some(no) = admit(&d, with_auth, &headers, peer) {
                        return no;
                    }
                    index(&d).await
                },
            ),
        )
        .route(
            "/bench/{issue}",
            axum::routing::get(
                move |State(d): State<Arc<Dashboard>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      Path(issue): Path<String>,
                      headers: HeaderMap| async move {
                    if let Some(no) = admit(&d, with_auth, &headers, peer) {
                        return no;
                    }
                    bench(&d, &issue).await
                },
            ),
        )
        .route(
            "/bench/{issue}/wake",
            axum::routing::post(
                move |State(d): State<Arc<Dashboard>>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      Path(issue): Path<String>,
                      headers: HeaderMap| async move {
                    if let Some(no) = admit(&d, with_auth, &headers, peer) {
                        return no;
                    }
                    wake(&d, &issue, &headers)
                },
            ),
        )
        .with_state(d)
}

/// Whether a form post comes from the dashboard's own page: a browser says where a request
/// comes from (`Sec-Fetch-Site`, `Origin`); another site's page may not press the button.
fn same_origin(headers: &HeaderMap) -> bool {
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let site_ok = h("sec-fetch-site").is_none_or(|s| s == "same-origin" || s == "none");
    let origin_ok = match (h("origin"), h("host")) {
        (None, _) => true,
        (Some(o), Some(host)) => {
            crate::naming::url_host(o) == crate::naming::url_host(host)
                && o.rsplit_once("://").is_some_and(|(_, a)| a == host)
        }
        (Some(_), None) => false,
    };
    site_ok && origin_ok
}

/// The bench page's button: starts waking the bench and goes back to its page.
fn wake(d: &Arc<Dashboard>, issue: &str, headers: &HeaderMap) -> Response {
    let Ok(issue) = crate::naming::normalize_issue_key(issue) else {
        return (StatusCode::NOT_FOUND, "no such issue\n").into_response();
    };
    if !same_origin(headers) {
        return (
            StatusCode::FORBIDDEN,
            "a wake comes from the dashboard's own page\n",
        )
            .into_response();
    }
    let waker = d.waker.clone();
    let key = issue.clone();
    tokio::spawn(async move {
        if let Err(e) = waker.wake(&key, "dashboard").await {
            super::log(&format!(
                "[{key}] warning: the dashboard's wake failed: {e}"
            ));
        }
    });
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, format!("../{issue}"))],
        format!("waking {issue}\n"),
    )
        .into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the engine could not be read: {}\n",
            crate::secret::redact(&e.to_string())
        ),
    )
        .into_response()
}

fn row_of(
    d: &Dashboard,
    issue: &str,
    b: Option<&inspect::BenchRecord>,
    last: Option<LastDeploy>,
) -> view::Row {
    view::Row {
        issue: issue.to_string(),
        tracker_url: (!d.cfg.tracker_web.is_empty())
            .then(|| format!("{}/{issue}", d.cfg.tracker_web.trim_end_matches('/'))),
        branch: b
            .map(|b| b.branch.clone())
            .or_else(|| last.as_ref().map(|l| l.branch.clone()))
            .unwrap_or_default(),
        commit: b
            .map(|b| b.commit.clone())
            .or_else(|| last.as_ref().map(|l| l.commit.clone()))
            .unwrap_or_default(),
        state: b.and_then(|b| b.state.clone()),
        url: b.and_then(|b| b.url.clone()),
        age_seconds: b.and_then(|b| b.age_seconds),
        ttl_left: match (d.cfg.ttl, b.and_then(|b| b.age_seconds)) {
            (Some(ttl), Some(age)) => Some(ttl.as_secs().saturating_sub(age)),
            _ => None,
        },
        summary: None,
        last: last.map(|l| (l.result, l.at, crate::secret::redact(&l.message))),
    }
}

async fn index(d: &Dashboard) -> Response {
    let benches = match inspect::list(&d.engine).await {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let results = LastDeploy::all(&d.engine).await.unwrap_or_default();
    let mut issues: Vec<String> = benches.iter().map(|b| b.issue.clone()).collect();
    issues.extend(results.iter().map(|(i, _)| i.clone()));
    issues.sort();
    issues.dedup();
    let rows: Vec<view::Row> = issues
        .iter()
        .map(|i| {
            let b = benches.iter().find(|b| &b.issue == i);
            let last = results.iter().find(|(k, _)| k == i).map(|(_, l)| l.clone());
            row_of(d, i, b, last)
        })
        .collect();
    let summaries = d.summaries(&issues).await;
    let rows: Vec<view::Row> = rows
        .into_iter()
        .map(|mut r| {
            r.summary = summaries.get(&r.issue).cloned();
            r
        })
        .collect();
    let (running, waiting) = d.scheduler.jobs();
    let jobs = view::Jobs { running, waiting };
    Html(view::index(&rows, &jobs, crate::clock::now_unix()).into_string()).into_response()
}

async fn bench(d: &Dashboard, issue: &str) -> Response {
    let Ok(issue) = crate::naming::normalize_issue_key(issue) else {
        return (StatusCode::NOT_FOUND, "no such issue\n").into_response();
    };
    let status = match inspect::status(&d.engine, &issue).await {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    if status.bench.is_none() && status.last_deploy.is_none() {
        return (StatusCode::NOT_FOUND, format!("{issue} has no bench\n")).into_response();
    }
    let logs = match inspect::find_bench(&d.engine, &issue).await {
        Ok(Some(c)) => d
            .engine
            .benches
            .logs_tail(&c.id, 50)
            .await
            .unwrap_or_default()
            .iter()
            .map(|l| crate::secret::redact(l))
            .collect(),
        _ => Vec::new(),
    };
    let services = status
        .bench
        .as_ref()
        .map(|b| {
            b.services
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.state.clone(),
                        s.health.clone().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let earlier = status
        .last_deploy
        .as_ref()
        .map(|l| {
            l.earlier
                .iter()
                .map(|e| (e.result.clone(), e.at, e.commit.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut row = row_of(d, &issue, status.bench.as_ref(), status.last_deploy);
    row.summary = d
        .summaries(std::slice::from_ref(&issue))
        .await
        .remove(&issue);
    let detail = view::Detail {
        row,
        services,
        logs,
        earlier,
    };
    Html(view::bench(&detail, crate::clock::now_unix()).into_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_dashboard_s_own_page_may_press_the_wake_button() {
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8781")])));
        assert!(same_origin(&headers(&[
            ("host", "127.0.0.1:8781"),
            ("origin", "http://127.0.0.1:8781"),
            ("sec-fetch-site", "same-origin"),
        ])));
        for bad in [
            [
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            [
                ("origin", "http://127.0.0.1:9999"),
                ("sec-fetch-site", "same-site"),
            ],
            [
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            let mut h = headers(&bad);
            h.insert("host", "127.0.0.1:8781".parse().unwrap());
            assert!(!same_origin(&h), "{bad:?}");
        }
    }
}
