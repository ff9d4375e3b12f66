//! The power role: a bench put to sleep keeps everything it is (container or service,
//! volumes, network, labels, address) but runs nothing, and starts again as it was. Serve
//! tells an idle bench from a busy one by its inbound connections, which this role reads too.

use crate::Result;
use async_trait::async_trait;

/// A container's inbound use: what a visitor does to it, not what it does on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbound {
    /// TCP connections it accepted since it started.
    pub accepted: u64,
    /// Connections from another host open now on a port it listens on.
    pub open: u32,
}

/// Stopping and starting a bench or one of its services in place, and reading its use.
#[async_trait]
pub trait Power: Send + Sync {
    /// Stops `id` without removing it: a container is stopped (its memory freed), a swarm
    /// service is scaled to 0 replicas. One already stopped is not an error.
    async fn stop(&self, id: &str) -> Result<()>;
    /// Starts `id` again as it was (a service back to 1 replica). One running is not an error.
    async fn start(&self, id: &str) -> Result<()>;
    /// `id`'s inbound use; `None` when it cannot be read here (not running, an engine on
    /// another host, a swarm task on another node).
    async fn inbound(&self, id: &str) -> Result<Option<Inbound>>;
}
