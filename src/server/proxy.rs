//! serve's front door (`--proxy-listen`): requests are routed by their `Host` to the bench
//! whose address (its URL template rendered, the same scheme the Tracker link holds) has that
//! host, streamed both ways (WebSocket and other upgrades included) with hyper's client and
//! upgrade support, and counted for the idle clock. A request for a sleeping bench wakes it
//! and is held until the bench answers; past `--wake-hold` a browser gets a small page that
//! reloads itself, anything else a 503 with `Retry-After`. The listener's limits hold here too:
//! an upgraded connection keeps its place under the cap until its tunnel closes, a tunnel
//! that passes nothing for `--tunnel-idle-timeout` is closed, and a request body that stalls
//! for `--body-timeout` is cut.

use super::hosts::{request_host, Hosts};
use super::idle::{Clock, Waker};
use super::Metrics;
use axum::body::{Body, HttpBody as _};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What `--proxy-listen` runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// How long a request for a sleeping bench is held while it wakes (`--wake-hold`; a
    /// woken bench may take the deploys' `--ready-timeout` to answer).
    pub wake_hold: Duration,
    /// An upgraded connection passing no byte either way this long is closed
    /// (`--tunnel-idle-timeout`).
    pub tunnel_idle: Duration,
    /// A request body that sends nothing for this long is cut (`--body-timeout`).
    pub body_gap: Duration,
    /// Wakes a minute, all clients together (`--wake-rate`) and per client
    /// (`--wake-rate-client`).
    pub wake_rate: u32,
    pub wake_rate_client: u32,
}

/// The proxy: where each host goes, the idle clock and the waker.
pub struct Proxy {
    pub hosts: Arc<Hosts>,
    pub clock: Arc<Clock>,
    pub waker: Arc<Waker>,
    pub metrics: Arc<Metrics>,
    pub cfg: ProxyConfig,
    /// How often a request may wake a bench.
    pub wake_rate: super::wake_rate::WakeRate,
}

/// Headers that belong to one connection, not to the request (RFC 9110, section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The page a browser gets while the bench wakes: it reloads itself.
fn waking_page(issue: &str) -> Response<Body> {
    let page = maud::html! {
        (maud::DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="2";
                title { (issue) " is waking up" }
            }
            body style="font-family: sans-serif; margin: 3em" {
                h1 { (issue) " is waking up" }
                p { "Its bench was asleep. This page reloads by itself until it answers." }
            }
        }
    };
    let mut r = Response::new(Body::from(page.into_string()));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONNECTION)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| {
            c.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
        && headers.contains_key(header::UPGRADE)
}

/// The front door is the edge: what a client says about where it comes from is replaced by
/// what the connection shows (`X-Forwarded-*`, `X-Real-IP`, `Forwarded`, RFC 7239), so a bench
/// never trusts an address a visitor made up.
fn edge_headers(h: &mut HeaderMap, peer: Option<std::net::IpAddr>, host: &str) {
    for name in [
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
        "x-real-ip",
        "forwarded",
    ] {
        h.remove(name);
    }
    let proto = "http";
    let mut forwarded = Vec::new();
    if let Some(ip) = peer {
        let ip_text = ip.to_string();
        if let Ok(v) = HeaderValue::from_str(&ip_text) {
            h.insert("x-forwarded-for", v.clone());
            h.insert("x-real-ip", v);
        }
        forwarded.push(match ip {
            std::net::IpAddr::V6(_) => format!("for=\"[{ip_text}]\""),
            std::net::IpAddr::V4(_) => format!("for={ip_text}"),
        });
    }
    if let Ok(v) = HeaderValue::from_str(host) {
        h.insert("x-forwarded-host", v);
        forwarded.push(format!("host=\"{host}\""));
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    forwarded.push(format!("proto={proto}"));
    if let Ok(v) = HeaderValue::from_str(&forwarded.join(";")) {
        h.insert("forwarded", v);
    }
}

/// Answers one request: routed, woken when asleep, forwarded.
pub async fn handle(
    proxy: Arc<Proxy>,
    peer: Option<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let host = request_host(req.headers(), req.uri());
    let Some(route) = proxy.hosts.route(&host, false).await else {
        return plain(
            StatusCode::NOT_FOUND,
            format!("no bench answers at {host}\n"),
        );
    };
    let issue = route.issue.clone();
    proxy.clock.request(&issue);
    proxy
        .metrics
        .inc("benchctl_proxy_requests_total", &[("issue", &issue)]);
    let html = wants_html(req.headers());
    let mut target = match route.target {
        Some(t) => t,
        None => match woken(&proxy, &host, &issue, html, peer).await {
            Ok(t) => t,
            Err(answer) => return answer,
        },
    };
    let sender = match connect_unless_moved(&proxy, &host, target).await {
        Ok(s) => s,
        // the route was stale (the bench replaced, or put to sleep by another process): read
        // it again, wake the bench if it sleeps, and connect once more
        Err(stale) => {
            let fresh = match stale {
                Stale::Moved(now) => now,
                Stale::Failed => elsewhere(&proxy, &host, target).await,
            };
            target = match fresh {
                Some(t) => t,
                None => match woken(&proxy, &host, &issue, html, peer).await {
                    Ok(t) => t,
                    Err(answer) => return answer,
                },
            };
            match connect(target).await {
                Ok(s) => s,
                Err(e) => {
                    return plain(
                        StatusCode::BAD_GATEWAY,
                        format!("{issue} did not answer: {e}\n"),
                    )
                }
            }
        }
    };
    let replay = replayable(&req);
    let req = req.map(|b| paced(b, proxy.cfg.body_gap));
    let e = match forward(
        req,
        sender,
        &host,
        peer,
        proxy.cfg.tunnel_idle,
        replay.is_some(),
    )
    .await
    {
        Ok(r) => return r,
        Err(e) => e,
    };
    // the connection ended before an answer, maybe because a redeploy is stopping the
    // container it reached: a request that may be sent twice goes again
    if let Some(again) = replay {
        if let Some(r) = resend(&proxy, &host, target, again, peer).await {
            return r;
        }
    }
    // the routes may be stale: read them next time
    proxy.hosts.forget();
    plain(
        StatusCode::BAD_GATEWAY,
        format!("{issue} did not answer: {e}\n"),
    )
}

/// `body` cut with an error when no part of it arrives for `gap` (a body of known length 0
/// passes as it is).
fn paced(body: Body, gap: Duration) -> Body {
    use futures_util::StreamExt;
    if body.size_hint().exact() == Some(0) {
        return body;
    }
    let frames = body.into_data_stream();
    let stream = futures_util::stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        match tokio::time::timeout(gap, frames.next()).await {
            Ok(Some(frame)) => Some((frame, Some(frames))),
            Ok(None) => None,
            Err(_) => Some((Err(axum::Error::new("the request body stalled")), None)),
        }
    });
    Body::from_stream(stream)
}

/// Where `host` goes now that a connection to `failed` was refused: the routes read again
/// (a few times, [`RESEND_PAUSE`] apart, while they still name only `failed`), the
/// replacement beside a stopping container first; `None` when nothing runs there.
async fn elsewhere(proxy: &Proxy, host: &str, failed: SocketAddr) -> Option<SocketAddr> {
    let mut last = None;
    for round in 0..RESENDS {
        if round > 0 {
            tokio::time::sleep(RESEND_PAUSE).await;
        }
        let route = proxy.hosts.route(host, true).await?;
        match (route.target, route.fallback) {
            (Some(t), _) if t != failed => return Some(t),
            (Some(_), Some(f)) => return Some(f),
            (None, _) => return None,
            (t, _) => last = t,
        }
    }
    last
}

/// How many times a dropped request is sent again, [`RESEND_PAUSE`] apart.
const RESENDS: u32 = 4;
const RESEND_PAUSE: Duration = Duration::from_millis(250);

/// Sends `req` (a replayable copy) again after `failed` dropped it: to the routes read afresh,
/// the replacement beside the bench before an address that just failed, a few times while a
/// redeploy moves the bench.
async fn resend(
    proxy: &Proxy,
    host: &str,
    failed: SocketAddr,
    req: Request<Body>,
    peer: Option<SocketAddr>,
) -> Option<Response<Body>> {
    for round in 0..RESENDS {
        if round > 0 {
            tokio::time::sleep(RESEND_PAUSE).await;
        }
        let route = proxy.hosts.route(host, true).await?;
        let order = match route.target == Some(failed) && round == 0 {
            true => [route.fallback, route.target],
            false => [route.target, route.fallback],
        };
        for t in order.into_iter().flatten() {
            let Ok(sender) = connect(t).await else {
                continue;
            };
            let copy = replayable(&req)?;
            if let Ok(r) = forward(copy, sender, host, peer, proxy.cfg.tunnel_idle, true).await {
                return Some(r);
            }
        }
    }
    None
}

/// A copy of `req` to send again if its connection fails before an answer: only a request
/// without a body whose method is safe to repeat (RFC 9110, section 9.2.2), never an upgrade.
fn replayable(req: &Request<Body>) -> Option<Request<Body>> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe || is_upgrade(req.headers()) || req.body().size_hint().exact() != Some(0) {
        return None;
    }
    let mut copy = Request::new(Body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// Wakes `issue`'s bench, holding the request up to `--wake-hold`; its address once it
/// answers, or what to answer instead (the waking page for a browser, a 503, a 502).
async fn woken(
    proxy: &Proxy,
    host: &str,
    issue: &str,
    html: bool,
    peer: Option<SocketAddr>,
) -> Result<SocketAddr, Response<Body>> {
    // a request joining a wake under way costs nothing; a new wake takes from the buckets
    if !proxy.waker.waking(issue) {
        let now = std::time::Instant::now();
        if let Err(wait) = proxy.wake_rate.admit(peer.map(|p| p.ip()), now) {
            proxy.metrics.inc("benchctl_wakes_refused_total", &[]);
            let mut r = plain(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{issue} is asleep, and too many benches were woken from here lately; try \
                     again in {} s\n",
                    wait.as_secs().max(1)
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(r);
        }
    }
    let waited = tokio::time::timeout(proxy.cfg.wake_hold, proxy.waker.wake(issue, "request"));
    match waited.await {
        Ok(Ok(())) => match proxy.hosts.route(host, true).await.and_then(|r| r.target) {
            Some(t) => Ok(t),
            None => Err(plain(
                StatusCode::BAD_GATEWAY,
                format!("{issue} woke but has no address to forward to\n"),
            )),
        },
        Ok(Err(e)) => Err(plain(
            StatusCode::BAD_GATEWAY,
            format!("{issue} could not be woken: {e}\n"),
        )),
        Err(_) if html => Err(waking_page(issue)),
        Err(_) => {
            let mut r = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{issue} is waking up; try again in a few seconds\n"),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            Err(r)
        }
    }
}

/// How long a connection to a bench's known address may take before the proxy checks that the
/// bench is still there. A bench is on this host's bridge (or behind a published port): it
/// connects within a millisecond, or refuses at once; only an address that is gone (the
/// container removed by a redeploy, whose new one the cached routes do not know yet) leaves a
/// connection hanging.
const CONNECT_PATIENCE: Duration = Duration::from_millis(250);

/// Why a connection to a route's address was not made.
enum Stale {
    /// It failed (refused, or timed out): the routes may be stale.
    Failed,
    /// The routes, read again while it hung, send the host here (`None`: nowhere running).
    Moved(Option<SocketAddr>),
}

/// [`connect`] to a route's `target`; one that has not connected within
/// [`CONNECT_PATIENCE`] is given up when the routes, read again, send `host` elsewhere.
async fn connect_unless_moved(
    proxy: &Proxy,
    host: &str,
    target: SocketAddr,
) -> Result<Sender, Stale> {
    let attempt = connect(target);
    tokio::pin!(attempt);
    if let Ok(done) = tokio::time::timeout(CONNECT_PATIENCE, &mut attempt).await {
        return done.map_err(|_| Stale::Failed);
    }
    let now = proxy.hosts.route(host, true).await.and_then(|r| r.target);
    match now == Some(target) {
        true => attempt.await.map_err(|_| Stale::Failed),
        false => Err(Stale::Moved(now)),
    }
}

/// A new HTTP/1.1 connection to a bench (upgrades allowed).
async fn connect(target: SocketAddr) -> Result<Sender, String> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(target),
    )
    .await
    .map_err(|_| format!("no connection to {target} within 5 s"))?
    .map_err(|e| format!("cannot connect to {target}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;

/// Sends `req` over `sender`'s connection and streams the answer back; an upgrade
/// (`101 Switching Protocols`) joins the two connections byte for byte. With `settle` (a
/// request that may be sent again) the answer is passed on once its body has ended, or is
/// long or slow enough to be a stream ([`settled`]): a body cut by a container a redeploy
/// stops is an error here, and the request goes again, rather than a truncated answer.
async fn forward(
    mut req: Request<Body>,
    mut sender: Sender,
    host: &str,
    peer: Option<SocketAddr>,
    idle: Duration,
    settle: bool,
) -> Result<Response<Body>, String> {
    let upgrade = is_upgrade(req.headers());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
    // the connection's place under the cap goes with its tunnel
    let slot = req.extensions().get::<super::listen::ConnSlot>().cloned();
    let (mut parts, body) = req.into_parts();
    // the origin form: path and query only
    parts.uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let h = &mut parts.headers;
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP.iter().map(|s| s.to_string()).chain(named) {
        if upgrade && (name == "connection" || name == "upgrade") {
            continue;
        }
        h.remove(name.as_str());
    }
    edge_headers(h, peer.map(|p| p.ip()), host);
    let mut resp = sender
        .send_request(Request::from_parts(parts, body))
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = client_side {
            let bench_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let _slot = slot;
                if let (Ok(c), Ok(b)) = tokio::join!(client_side, bench_side) {
                    super::tunnel::join(TokioIo::new(c), TokioIo::new(b), idle).await;
                }
            });
        }
    }
    if settle && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (parts, body) = resp.into_parts();
        return Ok(Response::from_parts(parts, settled(body).await?));
    }
    Ok(resp.map(Body::new))
}

/// How long, and how much of, an answer's body is read before it is passed on.
const SETTLE_TIME: Duration = Duration::from_millis(100);
const SETTLE_BYTES: usize = 256 * 1024;

/// `body` read until it ends, passes [`SETTLE_BYTES`] or [`SETTLE_TIME`] (a stream, such as
/// server-sent events, then flows on from where it is); an error on the way is returned.
async fn settled(mut body: hyper::body::Incoming) -> Result<Body, String> {
    use http_body_util::BodyExt;
    let deadline = tokio::time::Instant::now() + SETTLE_TIME;
    let mut frames = Vec::new();
    let mut size = 0;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return Ok(Body::new(FramesThen(frames.into(), None))),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(frame))) => {
                size += frame.data_ref().map_or(0, |d| d.len());
                frames.push(frame);
                if size > SETTLE_BYTES {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    Ok(Body::new(FramesThen(frames.into(), Some(body))))
}

/// Frames already read, then the rest of the body they came from.
struct FramesThen(
    std::collections::VecDeque<hyper::body::Frame<bytes::Bytes>>,
    Option<hyper::body::Incoming>,
);

impl hyper::body::Body for FramesThen {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, hyper::Error>>> {
        if let Some(f) = self.0.pop_front() {
            return std::task::Poll::Ready(Some(Ok(f)));
        }
        match self.1.as_mut() {
            Some(rest) => std::pin::Pin::new(rest).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty() && self.1.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let held: u64 = self
            .0
            .iter()
            .filter_map(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .sum();
        let rest = self
            .1
            .as_ref()
            .map_or(hyper::body::SizeHint::with_exact(0), |r| r.size_hint());
        let mut hint = hyper::body::SizeHint::new();
        hint.set_lower(held + rest.lower());
        if let Some(upper) = rest.upper() {
            hint.set_upper(held + upper);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)], body: &'static str) -> Request<Body> {
        let mut b = Request::builder().method(method).uri("/page?x=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body)).unwrap()
    }

    #[test]
    fn only_bodiless_safe_requests_are_sent_again() {
        let copy = replayable(&request("GET", &[("accept", "text/html")], "")).unwrap();
        assert_eq!(copy.method(), Method::GET);
        assert_eq!(copy.uri(), "/page?x=1");
        assert_eq!(copy.headers()["accept"], "text/html");
        assert!(replayable(&request("HEAD", &[], "")).is_some());
        assert!(replayable(&request("OPTIONS", &[], "")).is_some());
        // a body could be half sent; POST and friends may act twice
        assert!(replayable(&request("GET", &[], "a body")).is_none());
        assert!(replayable(&request("POST", &[], "")).is_none());
        assert!(replayable(&request("DELETE", &[], "")).is_none());
        // an upgrade is a connection, not a request to repeat
        let ws = [("connection", "Upgrade"), ("upgrade", "websocket")];
        assert!(replayable(&request("GET", &ws, "")).is_none());
    }
}
