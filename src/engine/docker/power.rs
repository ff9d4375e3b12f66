//! Docker's power role: a sleeping bench is a stopped container (`docker stop`, then
//! `docker start`); its traffic is the sum of its networks' counters from the stats API.

use super::DockerEngine;
use crate::engine::endpoint::not_found;
use crate::engine::power::Power;
use crate::Result;
use async_trait::async_trait;
use bollard::query_parameters::{StatsOptionsBuilder, StopContainerOptionsBuilder};
use futures_util::StreamExt;

/// The received and sent bytes of a stats reading, over all its networks.
pub(crate) fn traffic_of(stats: &bollard::models::ContainerStatsResponse) -> Option<u64> {
    let nets = stats.networks.as_ref()?;
    Some(
        nets.values()
            .map(|n| n.rx_bytes.unwrap_or(0) + n.tx_bytes.unwrap_or(0))
            .sum(),
    )
}

impl DockerEngine {
    /// The traffic counter of the container `id` (see [`Power::traffic`]).
    pub(crate) async fn container_traffic(&self, id: &str) -> Result<Option<u64>> {
        let opts = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(opts));
        match stream.next().await {
            Some(Ok(s)) => Ok(traffic_of(&s)),
            Some(Err(e)) if not_found(&e) => Ok(None),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl Power for DockerEngine {
    // the engine answers 304 for a container already stopped or started, which bollard
    // counts as success
    async fn stop(&self, id: &str) -> Result<()> {
        let opts = StopContainerOptionsBuilder::default().t(10).build();
        Ok(self.docker.stop_container(id, Some(opts)).await?)
    }

    async fn start(&self, id: &str) -> Result<()> {
        let opts = None::<bollard::query_parameters::StartContainerOptions>;
        Ok(self.docker.start_container(id, opts).await?)
    }

    async fn traffic(&self, id: &str) -> Result<Option<u64>> {
        self.container_traffic(id).await
    }
}
