//! The power role: a bench put to sleep keeps everything it is (container or service,
//! volumes, network, labels, address) but runs nothing, and starts again as it was. Serve
//! tells an idle bench from a busy one by its network counters, which this role reads too.

use crate::Result;
use async_trait::async_trait;

/// Stopping and starting a bench or one of its services in place, and reading its traffic.
#[async_trait]
pub trait Power: Send + Sync {
    /// Stops `id` without removing it: a container is stopped (its memory freed), a swarm
    /// service is scaled to 0 replicas. One already stopped is not an error.
    async fn stop(&self, id: &str) -> Result<()>;
    /// Starts `id` again as it was (a service back to 1 replica). One running is not an error.
    async fn start(&self, id: &str) -> Result<()>;
    /// The bytes `id` has received and sent on its networks since it started (the engine's
    /// stats API); `None` when the engine cannot tell (not running, or a swarm task on
    /// another node).
    async fn traffic(&self, id: &str) -> Result<Option<u64>>;
}
