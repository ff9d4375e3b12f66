//! Docker's marker role: a marker is a never-started container of an empty image; creating
//! it is atomic on its name.

use super::containers::remove_container;
use super::{plain_name, DockerEngine};
use crate::engine::endpoint::not_found;
use crate::engine::{labels, Marker, MarkerKind, Markers};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, CreateContainerOptionsBuilder,
    InspectContainerOptions,
};
use futures_util::StreamExt;
use std::collections::HashMap;

/// The empty image lock containers are made from (built locally, nothing to pull).
pub const LOCK_IMAGE: &str = "benchctl/lock:1";

impl DockerEngine {
    async fn build_lock_image(&self) -> Result<()> {
        let dockerfile = b"FROM scratch\n";
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "Dockerfile", &dockerfile[..])
            .map_err(|e| Error::Engine(e.to_string()))?;
        let body = tar.into_inner().map_err(|e| Error::Engine(e.to_string()))?;
        let mut lbl = HashMap::new();
        lbl.insert(labels::MANAGED.to_string(), "true".to_string());
        lbl.insert(labels::ROLE.to_string(), "lock".to_string());
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(LOCK_IMAGE)
            .rm(true)
            .forcerm(true)
            .labels(&lbl)
            .version(BuilderVersion::BuilderV1)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(body.into())));
        while let Some(item) = stream.next().await {
            let info = item?;
            if let Some(detail) = info.error_detail {
                return Err(Error::Engine(format!(
                    "cannot build the lock image: {}",
                    detail.message.unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Markers for DockerEngine {
    async fn create(&self, name: &str, labels: &HashMap<String, String>) -> Result<Option<String>> {
        for attempt in 0..2 {
            if attempt > 0 || self.docker.inspect_image(LOCK_IMAGE).await.is_err() {
                self.build_lock_image().await?;
            }
            let body = ContainerCreateBody {
                image: Some(LOCK_IMAGE.to_string()),
                cmd: Some(vec!["benchctl-lock".to_string()]),
                labels: Some(labels.clone()),
                network_disabled: Some(true),
                ..Default::default()
            };
            let opts = CreateContainerOptionsBuilder::default().name(name).build();
            match self.docker.create_container(Some(opts), body).await {
                Ok(c) => return Ok(Some(c.id)),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => return Ok(None),
                // the lock image was removed (gc) between the check and the create
                Err(e) if not_found(&e) && attempt == 0 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Engine(format!("cannot create {name}")))
    }

    async fn get(&self, name: &str) -> Result<Option<Marker>> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(Marker {
                id: c.id.unwrap_or_default(),
                name: plain_name(c.name.as_deref()),
                labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
                kind: MarkerKind::Container,
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, filter: &[String]) -> Result<Vec<Marker>> {
        Ok(super::containers_labelled(&self.docker, filter)
            .await?
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                labels::role(&labels).is_some().then(|| Marker {
                    id: c.id.unwrap_or_default(),
                    name: plain_name(c.names.as_ref().and_then(|n| n.first()).map(String::as_str)),
                    labels,
                    kind: MarkerKind::Container,
                })
            })
            .collect())
    }

    async fn remove(&self, marker: &Marker) -> Result<()> {
        remove_container(&self.docker, &marker.id).await
    }
}
