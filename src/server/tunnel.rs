//! An upgraded connection through the front door (a WebSocket): the visitor's side and the
//! bench's joined byte for byte until either closes, or until neither has sent a byte for the
//! idle timeout, so that a tunnel nobody uses does not hold a place under the cap for good.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Joins `a` and `b` until one closes or both are idle for `idle`; then both are dropped.
pub async fn join<A, B>(a: A, b: B, idle: Duration)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut a = Watched {
        io: a,
        last: last.clone(),
        start,
    };
    let mut b = Watched {
        io: b,
        last: last.clone(),
        start,
    };
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    loop {
        let quiet_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
        let deadline = quiet_since + idle;
        tokio::select! {
            _ = &mut copy => return,
            () = tokio::time::sleep_until(deadline) => {
                let moved = start + Duration::from_millis(last.load(Ordering::Relaxed));
                if moved == quiet_since {
                    return;
                }
            }
        }
    }
}

/// One side of a tunnel, noting when it last read a byte.
struct Watched<T> {
    io: T,
    /// Milliseconds after `start` of the last byte read on either side.
    last: Arc<AtomicU64>,
    start: Instant,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let ms = self.start.elapsed().as_millis() as u64;
            self.last.store(ms, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_quiet_tunnel_closes_and_a_busy_one_stays() {
        let (mut visitor, a) = tokio::io::duplex(64);
        let (b, mut bench) = tokio::io::duplex(64);
        let joined = tokio::spawn(join(a, b, Duration::from_secs(10)));
        // a byte every 6 s keeps it open past the timeout
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(6)).await;
            visitor.write_all(b"x").await.unwrap();
            let mut got = [0u8; 1];
            bench.read_exact(&mut got).await.unwrap();
        }
        assert!(!joined.is_finished());
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert!(joined.is_finished());
        let mut rest = Vec::new();
        assert_eq!(bench.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
