//! Who may open the dashboard: on serve's listener, the Basic credentials, with a back-off per
//! client after failed attempts (a password cannot be guessed at line speed); on its loopback
//! listener, only requests naming a loopback host (a web page cannot reach it through DNS
//! rebinding: its `Host` would be the attacker's name).

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts a client may make before it has to wait.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(300);
/// Clients remembered at most (beyond, the oldest are forgotten).
const MAX_CLIENTS: usize = 10_000;

/// Failed attempts per client address.
#[derive(Default)]
pub struct Backoff(Mutex<HashMap<IpAddr, (u32, Instant)>>);

impl Backoff {
    /// How long `ip` must still wait before it may try again (`None`: it may now).
    pub fn waiting(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (failures, last) = *map.get(&ip)?;
        let until = last + wait_after(failures);
        (until > now).then(|| until - now)
    }

    /// Records a failed attempt of `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CLIENTS && !map.contains_key(&ip) {
            map.retain(|_, (n, last)| *last + wait_after(*n) > now);
            if map.len() >= MAX_CLIENTS {
                map.clear();
            }
        }
        let e = map.entry(ip).or_insert((0, now));
        *e = (e.0.saturating_add(1), now);
    }

    /// A successful attempt of `ip` forgets its failures.
    pub fn succeeded(&self, ip: IpAddr) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&ip);
    }
}

/// The wait after `failures` failed attempts: none for the first few, then doubling from a
/// second up to [`MAX_WAIT`].
pub fn wait_after(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES) {
        None => Duration::ZERO,
        Some(n) => Duration::from_secs(1u64 << n.min(16)).min(MAX_WAIT),
    }
}

/// The answer to a client that must wait.
pub fn wait_answer(wait: Duration) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait.as_secs().max(1).to_string())],
        "too many failed attempts from this address: wait and try again\n",
    )
        .into_response()
}

/// Whether a request names a loopback host (`127.0.0.1`, `[::1]`, `localhost`, with a port or
/// not).
pub fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The answer to a request for another host on the loopback listener.
pub fn misdirected() -> Response {
    (
        StatusCode::MISDIRECTED_REQUEST,
        "the dashboard's loopback listener answers requests for 127.0.0.1 or localhost only\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_after_the_free_failures_and_is_capped() {
        assert_eq!(wait_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(wait_after(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(wait_after(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(wait_after(1000), MAX_WAIT);
        let b = Backoff::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert_eq!(b.waiting(ip, now), None);
            b.failed(ip, now);
        }
        assert!(b.waiting(ip, now).is_some());
        assert!(b.waiting("10.0.0.2".parse().unwrap(), now).is_none());
        b.succeeded(ip);
        assert_eq!(b.waiting(ip, now), None);
    }

    #[test]
    fn only_loopback_hosts_pass() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, v.parse().unwrap());
            loopback_host(&m)
        };
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:9",
            "127.1.2.3",
        ] {
            assert!(h(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "[fe80::1]",
        ] {
            assert!(!h(bad), "{bad}");
        }
        assert!(!loopback_host(&HeaderMap::new()));
    }
}
