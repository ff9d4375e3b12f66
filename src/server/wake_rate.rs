//! How often the front door may wake a sleeping bench: host names are guessable, so a loop over
//! `proj-1…proj-500` would wake everything, and under a cap each wake stops the bench the next
//! request wakes. Wakes are token buckets per minute: one for everyone (`--wake-rate`) and one
//! per client address (`--wake-rate-client`; IPv6 clients by their /64). A request that joins a
//! wake under way costs nothing; the dashboard's button (behind its login) is not limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clients remembered at most; the fullest buckets are forgotten first past it.
const MAX_CLIENTS: usize = 4096;

/// A bucket of `rate` wakes a minute, full at first.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(rate),
            at: now,
        }
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let per_sec = f64::from(rate) / 60.0;
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * per_sec;
        self.tokens = (self.tokens + gained).min(f64::from(rate));
        self.at = now;
    }

    /// How long until a whole token is there (zero when it is).
    fn wait(&self, rate: u32) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing * 60.0 / f64::from(rate.max(1)))
    }
}

/// The wake buckets (see the module's header).
pub struct WakeRate {
    global: u32,
    per_client: u32,
    state: Mutex<(Option<Bucket>, HashMap<IpAddr, Bucket>)>,
}

impl WakeRate {
    /// `global` and `per_client` wakes a minute (0: none by that bucket).
    pub fn new(global: u32, per_client: u32) -> WakeRate {
        WakeRate {
            global,
            per_client,
            state: Mutex::new((None, HashMap::new())),
        }
    }

    /// Takes a wake for `client`, or says how long until one may be taken.
    pub fn admit(&self, client: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (global, clients) = &mut *st;
        let g = global.get_or_insert_with(|| Bucket::full(self.global, now));
        g.refill(self.global, now);
        let key = client.map(client_key);
        if let Some(k) = key {
            if clients.len() >= MAX_CLIENTS && !clients.contains_key(&k) {
                forget_fullest(clients, self.per_client, now);
            }
        }
        let mut c = key.map(|k| {
            let b = clients
                .entry(k)
                .or_insert_with(|| Bucket::full(self.per_client, now));
            b.refill(self.per_client, now);
            *b
        });
        let wait = g
            .wait(self.global)
            .max(c.map_or(Duration::ZERO, |b| b.wait(self.per_client)));
        if g.tokens < 1.0 || c.is_some_and(|b| b.tokens < 1.0) {
            return Err(wait.max(Duration::from_secs(1)));
        }
        g.tokens -= 1.0;
        if let (Some(k), Some(b)) = (key, c.as_mut()) {
            b.tokens -= 1.0;
            clients.insert(k, *b);
        }
        Ok(())
    }
}

/// The address a client is counted by: IPv6 by its /64 (one host has a whole /64).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Forgets the clients whose buckets are full again (they lose nothing), or else the oldest.
fn forget_fullest(clients: &mut HashMap<IpAddr, Bucket>, rate: u32, now: Instant) {
    clients.retain(|_, b| {
        b.refill(rate, now);
        b.tokens < f64::from(rate)
    });
    if clients.len() >= MAX_CLIENTS {
        if let Some(oldest) = clients.iter().min_by_key(|(_, b)| b.at).map(|(k, _)| *k) {
            clients.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_and_everyone_get_their_rate_and_no_more() {
        let r = WakeRate::new(5, 2);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(r.admit(Some(a), t0).is_ok());
        assert!(r.admit(Some(a), t0).is_ok());
        // a's two a minute are spent: the next one in 30 s
        let wait = r.admit(Some(a), t0).unwrap_err();
        assert_eq!(wait.as_secs(), 30);
        assert!(r.admit(Some(b), t0).is_ok());
        assert!(r.admit(Some(b), t0).is_ok());
        assert!(r.admit(None, t0).is_ok());
        // everyone's five are spent
        assert!(r.admit(Some("10.0.0.3".parse().unwrap()), t0).is_err());
        // a minute later both have their rate again
        let t1 = t0 + Duration::from_secs(60);
        assert!(r.admit(Some(a), t1).is_ok());
        // one host's IPv6 addresses are one client
        let r = WakeRate::new(100, 1);
        assert!(r.admit(Some("2001:db8::1".parse().unwrap()), t0).is_ok());
        assert!(r.admit(Some("2001:db8::2".parse().unwrap()), t0).is_err());
    }
}
