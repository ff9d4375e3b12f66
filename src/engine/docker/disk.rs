//! Docker's disk usage by issue: the images benchctl built for each issue (their whole size,
//! base layers they share with other images included) and its containers' writable layers
//! (`SizeRw`), from the list APIs, and the engine's `DockerRootDir`. Volumes are not counted:
//! the engine's disk-usage API that sizes them changed its shape between API versions.

use super::DockerEngine;
use crate::engine::disk::DiskUsage;
use crate::engine::labels;
use crate::Result;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListImagesOptionsBuilder};
use std::collections::HashMap;

impl DockerEngine {
    pub(crate) async fn disk_usage(&self) -> Result<DiskUsage> {
        let filters = HashMap::from([("label".to_string(), vec![labels::ISSUE.to_string()])]);
        let images = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let containers = ListContainersOptionsBuilder::default()
            .all(true)
            .size(true)
            .filters(&filters)
            .build();
        let info = self.docker.info().await?;
        let mut usage = DiskUsage {
            root_dir: info.docker_root_dir,
            ..Default::default()
        };
        let size = |n: i64| u64::try_from(n).unwrap_or(0);
        for i in self.docker.list_images(Some(images)).await? {
            if let Some(issue) = i.labels.get(labels::ISSUE).filter(|i| !i.is_empty()) {
                usage.by_issue.entry(issue.clone()).or_default().images += size(i.size);
            }
        }
        for c in self.docker.list_containers(Some(containers)).await? {
            let labels = c.labels.unwrap_or_default();
            if let Some(issue) = labels.get(labels::ISSUE).filter(|i| !i.is_empty()) {
                let rw = size(c.size_rw.unwrap_or(0));
                usage.by_issue.entry(issue.clone()).or_default().layers += rw;
            }
        }
        Ok(usage)
    }
}
