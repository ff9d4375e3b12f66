//! What benches hold on the engine's disk, by issue (`benchctl.issue`): their images, their

//! Read for gc's report, `benchctl disk`, and the deploy's check for room before a build.

use serde::Serialize;
use std::collections::BTreeMap;

/// One issue's bytes on the engine's disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IssueDisk {
    /// Its images (their whole size: base layers shared with other images included).
    pub images: u64,
    /// Its containers' writable layers.
    pub layers: u64,
}

impl IssueDisk {
    pub fn total(&self) -> u64 {
        self.images + self.layers
    }
}

/// The engine's disk as far as benches go.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub by_issue: BTreeMap<String, IssueDisk>,
    /// The engine's data directory (`DockerRootDir`), where its disk fills.
    pub root_dir: Option<String>,
}
