//! The swarm's marker role: the lock and result markers are swarm configs (names unique across
//! the swarm, so benchctl processes talking to different managers share each issue's lock).
//! Marker containers the docker backend left on this node are listed too, so gc finds them.

use crate::engine::docker::DockerEngine;
use crate::engine::endpoint::not_found;
use crate::engine::{Marker, MarkerKind, Markers};
use crate::Result;
use async_trait::async_trait;
use std::collections::HashMap;

pub struct SwarmMarkers {
    pub(super) containers: DockerEngine,
}

fn marker(c: bollard::models::Config) -> Marker {
    let spec = c.spec.unwrap_or_default();
    Marker {
        id: c.id.unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        labels: spec.labels.unwrap_or_default(),
        kind: MarkerKind::Config,
    }
}

#[async_trait]
impl Markers for SwarmMarkers {
    async fn create(&self, name: &str, labels: &HashMap<String, String>) -> Result<Option<String>> {
        let spec = bollard::models::ConfigSpec {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            // "benchctl": a config must hold something
            data: Some("YmVuY2hjdGw=".to_string()),
            templating: None,
        };
        match self.containers.docker.create_config(spec).await {
            Ok(r) => Ok(Some(r.id)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Marker>> {
        match self.containers.docker.inspect_config(name).await {
            Ok(c) => Ok(Some(marker(c))),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, filter: &[String]) -> Result<Vec<Marker>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), filter.to_vec());
        let opts = bollard::query_parameters::ListConfigsOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut out: Vec<Marker> = self
            .containers
            .docker
            .list_configs(Some(opts))
            .await?
            .into_iter()
            .map(marker)
            .collect();
        // marker containers a container bench of the issue may have left on this node
        out.extend(Markers::list(&self.containers, filter).await?);
        Ok(out)
    }

    async fn remove(&self, m: &Marker) -> Result<()> {
        match m.kind {
            MarkerKind::Container => Markers::remove(&self.containers, m).await,
            MarkerKind::Config => match self.containers.docker.delete_config(&m.id).await {
                Err(e) if !not_found(&e) => Err(e.into()),
                _ => Ok(()),
            },
        }
    }
}
