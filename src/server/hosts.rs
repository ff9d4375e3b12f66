//! Which bench a host name belongs to: every bench's address (its URL template rendered, the
//! one the Tracker link holds) read from the benches' labels and kept a few seconds. serve's
//! front door routes by it, and the page a reverse proxy shows for a bench that does not
//! answer (`/asleep`) names the bench by it.

use super::log;
use crate::app::inspect::{benches, record_from};
use crate::engine::{labels, Engine};
use crate::naming::container_name;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bench at a host.
#[derive(Debug, Clone)]
pub struct Route {
    pub issue: String,
    /// The bench's address from here (`None`: it runs nothing now).
    pub target: Option<SocketAddr>,
    /// Another running container of the issue while a redeploy replaces the bench (the new
    /// one beside the old): where a request the old one dropped is sent again.
    pub fallback: Option<SocketAddr>,
}

/// The host table, read from the engine when stale.
pub struct Hosts {
    engine: Engine,
    table: Mutex<(Option<Instant>, HashMap<String, Route>)>,
    /// Held while the table is read from the engine: callers that find it stale meanwhile
    /// wait for that reading instead of making their own (single flight).
    refreshing: tokio::sync::Mutex<()>,
}

/// How long the routes read from the engine are used before they are read again.
const ROUTES_FRESH: Duration = Duration::from_secs(3);

/// How soon a host no bench has may read the routes again.
const MISS_REREAD: Duration = Duration::from_secs(1);

/// How soon a caller that asks for fresh routes (a connection failed) may read them again: a
/// flood of failing requests reads the engine five times a second at most.
const FORCED_REREAD: Duration = Duration::from_millis(200);

impl Hosts {
    pub fn new(engine: Engine) -> Hosts {
        Hosts {
            engine,
            table: Mutex::new((None, HashMap::new())),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads every bench's host and address from the engine. Of an issue's containers, the
    /// bench (its own name) is routed to while it runs; a redeploy's new container (named
    /// beside it until it is renamed into place) once it alone runs, or once the bench is gone
    /// by the time it is inspected: while a bench is replaced, requests go to the new one
    /// instead of waking a bench that is not asleep.
    async fn refresh(&self) -> crate::Result<()> {
        let began = Instant::now();
        let mut by_issue: HashMap<String, Vec<(u8, crate::engine::ContainerInfo)>> = HashMap::new();
        for b in benches(&self.engine, None).await? {
            let Some(issue) = b.labels.get(labels::ISSUE) else {
                continue;
            };
            let rank = match (b.name == container_name(issue), b.running) {
                (true, true) => 3,
                (false, true) => 2,
                (true, false) => 1,
                (false, false) => continue,
            };
            by_issue.entry(issue.clone()).or_default().push((rank, b));
        }
        let now = crate::clock::now_unix();
        let mut table = HashMap::new();
        // a host two benches claim routes to neither (not to whichever a map's order gives)
        let mut shared = std::collections::HashSet::new();
        for (issue, mut found) in by_issue {
            found.sort_by_key(|b| std::cmp::Reverse(b.0));
            let mut chosen: Option<(String, Option<SocketAddr>)> = None;
            let mut fallback = None;
            for (_, b) in &found {
                if chosen.as_ref().is_some_and(|c| c.1.is_some()) {
                    // the bench answers; a second running container is its replacement
                    if b.running {
                        fallback = self.target(b).await;
                    }
                    break;
                }
                let Some(url) = record_from(b, now).url else {
                    continue;
                };
                let host = crate::naming::url_host(&url).to_ascii_lowercase();
                let target = match b.running {
                    true => self.target(b).await,
                    false => None,
                };
                // a running container without an address was removed since the listing: the
                // next one is asked, this one kept only when no other answers
                let gone = b.running && target.is_none();
                if chosen.is_none() || !gone {
                    chosen = Some((host, target));
                }
            }
            if let Some((host, target)) = chosen {
                if table.contains_key(&host) {
                    shared.insert(host.clone());
                }
                let route = Route {
                    issue,
                    target,
                    fallback,
                };
                table.insert(host, route);
            }
        }
        for host in &shared {
            table.remove(host);
            super::log(&format!(
                "warning: two benches have the address host {host}: the front door routes it to \
                 neither (give --url-template an {{issue}} in its host)"
            ));
        }
        *self.lock() = (Some(began), table);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<Instant>, HashMap<String, Route>)> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A running bench's address from here: its address on its network with its container
    /// port, else its published port on this host (a swarm's ingress).
    async fn target(&self, b: &crate::engine::ContainerInfo) -> Option<SocketAddr> {
        let port: u16 = b.labels.get(labels::PORT)?.parse().ok()?;
        let info = self.engine.benches.inspect(&b.id).await.ok()??;
        match (info.ip, info.host_port) {
            (Some(ip), _) => format!("{ip}:{port}").parse().ok(),
            (None, Some(p)) => Some(SocketAddr::from(([127, 0, 0, 1], p))),
            (None, None) => None,
        }
    }

    /// The bench at `host` (lower case, no port), read again when stale or `fresh` is asked.
    pub async fn route(&self, host: &str, fresh: bool) -> Option<Route> {
        let asked = Instant::now();
        let stale = {
            let r = self.lock();
            let age = r.0.map(|t| t.elapsed());
            // an unknown host reads them again, but not more than once a second (a flood of
            // made-up hosts must not become a flood of engine reads)
            age.is_none_or(|a| a > ROUTES_FRESH)
                || (fresh && age.is_some_and(|a| a > FORCED_REREAD))
                || (!r.1.contains_key(host) && age.is_some_and(|a| a > MISS_REREAD))
        };
        if stale {
            let _one = self.refreshing.lock().await;
            // a reading that began after this caller asked is as fresh as its own would be
            let read_since = self.lock().0.is_some_and(|t| t >= asked);
            if read_since {
                return self.lock().1.get(host).cloned();
            }
            if let Err(e) = self.refresh().await {
                log(&format!(
                    "warning: the benches' addresses could not be read: {e}"
                ));
            }
        }
        self.lock().1.get(host).cloned()
    }

    /// Reads the table again at the next lookup (a route turned out stale).
    pub fn forget(&self) {
        self.lock().0 = None;
    }
}

/// The host a request is for (`Host`, else the URI's authority), lower case, without its port.
pub fn request_host(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> String {
    let raw = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    crate::naming::url_host(&raw).to_ascii_lowercase()
}
