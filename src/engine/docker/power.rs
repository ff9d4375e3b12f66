//! Docker's power role: a sleeping bench is a stopped container (`docker stop`, then
//! `docker start`); its inbound use is read from its network namespace (`inbound.rs`).

use super::DockerEngine;
use crate::engine::endpoint::not_found;
use crate::engine::power::{Inbound, Power};
use crate::Result;
use async_trait::async_trait;
use bollard::query_parameters::StopContainerOptionsBuilder;

impl DockerEngine {
    /// The inbound use of the container `id` (see [`Power::inbound`]).
    pub(crate) async fn container_inbound(&self, id: &str) -> Result<Option<Inbound>> {
        let info = match self.docker.inspect_container(id, None).await {
            Ok(i) => i,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let pid = info.state.and_then(|s| s.pid).filter(|p| *p > 0);
        let key = info.network_settings.and_then(|n| n.sandbox_key);
        Ok(match (pid, key) {
            (Some(pid), Some(key)) => super::inbound::read(pid, &key),
            _ => None,
        })
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

    async fn inbound(&self, id: &str) -> Result<Option<Inbound>> {
        self.container_inbound(id).await
    }
}
