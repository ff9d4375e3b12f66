//! The HTTP front of `serve`: hyper connections with deadlines, since axum's `serve` runs
//! hyper without timers and a client that never finishes its headers would hold a connection
//! for good. Headers must arrive within `--header-timeout`; bodies are read within
//! `--body-timeout` by the handler; at most `--max-connections` are open at once (more are
//! closed at once); on shutdown open connections get a short bound to finish their request,
//! then stalled ones are dropped. The bench proxy (`--proxy-listen`) runs on it too, with
//! upgrades.

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// The connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request's headers must be complete within this long (idle keep-alive included).
    pub header_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
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
        // handlers may ask who is connected (`ConnectInfo`: the proxy's X-Forwarded-For)
        let svc = TowerToHyperService::new(app.clone());
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                hyper::service::Service::call(&svc, req)
            });
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
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
