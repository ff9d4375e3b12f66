//! The HTTP front of `serve`: hyper connections with deadlines, since axum's `serve` runs
//! hyper without timers and a client that never finishes its headers would hold a connection
//! for good. Headers must arrive within `--header-timeout`; bodies are read within
//! `--body-timeout` by the handler; at most `--max-connections` are open at once (more are
//! closed at once); on shutdown open connections get a short bound to finish their request,
//! then stalled ones are dropped. The bench proxy (`--proxy-listen`) runs on it too, with
//! upgrades: a connection's place under the cap ([`ConnSlot`]) goes with its request, so an
//! upgraded connection keeps it until its tunnel closes.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request's headers must be complete within this long (idle keep-alive included).
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

/// A connection's place under `--max-connections`, held while the connection lives and, for
/// an upgraded one, by its tunnel (each request carries a clone as an extension).
#[derive(Clone)]
pub struct ConnSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Descriptors kept free of connections: the engine's, git's, the state files', the logs'.
const FD_RESERVE: u64 = 256;

/// Raises this process's soft limit on open files to its hard limit; returns `(before, now)`.
pub fn raise_fd_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return (0, 0);
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return (before, lim.rlim_max);
        }
    }
    (before, before)
}

/// The connections each of serve's listeners may hold so that all of them at their cap fit
/// `fds` open files: the webhooks' and the loopback dashboard's take one descriptor a
/// connection, the front door's two (the visitor's and the bench's).
pub fn fitted_cap(wanted: usize, fds: u64) -> usize {
    let per_connection = 4;
    let room = fds.saturating_sub(FD_RESERVE) / per_connection;
    wanted.min(room as usize).max(1)
}

/// How long open connections get to finish their request once shutdown begins.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // out of file descriptors and the like: pause rather than spin
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while conns.try_join_next().is_some() {}
        // over the cap: closed at once, the sender retries later
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let slot = ConnSlot(Arc::new(permit));
        let held = slot.clone();
        // handlers may ask who is connected (`ConnectInfo`: the proxy's X-Forwarded-For)
        let svc = TowerToHyperService::new(app.clone());
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req.extensions_mut().insert(held.clone());
                hyper::service::Service::call(&svc, req)
            });
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            // upgrades (WebSocket) pass through the proxy
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_BOUND, conn).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_BOUND + Duration::from_secs(1), drained)
        .await
        .is_err()
    {
        conns.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_descriptors_serve_may_open() {
        assert_eq!(fitted_cap(512, 1_048_576), 512);
        // the common soft limit of 1024: (1024 - 256) / 4
        assert_eq!(fitted_cap(512, 1024), 192);
        assert_eq!(fitted_cap(512, 100), 1);
    }
}
