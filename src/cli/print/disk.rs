//! `disk`'s table, and the line gc adds: what each bench holds on the engine's disk and the
//! room left there.

use super::{table, Line, Report};
use crate::app::disk::{human, DiskReport};
use serde_json::{json, Value};

/// `disk`: each bench's bytes, the largest first.
pub struct Disk(pub DiskReport);

impl Report for Disk {
    fn json(&self) -> Value {
        let benches: Vec<Value> = self
            .0
            .benches
            .iter()
            .map(|(issue, d)| {
                json!({ "issue": issue, "images": d.images, "layers": d.layers,
                        "total": d.total() })
            })
            .collect();
        json!({ "benches": benches, "total": self.0.total(), "free": self.0.free,
                "root_dir": self.0.root_dir })
    }
    fn human(&self) -> Vec<Line> {
        let rows: Vec<[String; 4]> = self
            .0
            .benches
            .iter()
            .map(|(issue, d)| {
                [
                    issue.clone(),
                    human(d.images),
                    human(d.layers),
                    human(d.total()),
                ]
            })
            .collect();
        let mut lines = table(["ISSUE", "IMAGES", "WRITTEN", "TOTAL"], &rows);
        lines.push(Line::Out(summary(&self.0)));
        lines
    }
}

/// `benches hold 1.2 GiB; the engine's disk (/var/lib/docker) has 40.0 GiB free`.
pub fn summary(r: &DiskReport) -> String {
    let free = match (&r.root_dir, r.free) {
        (Some(dir), Some(free)) => format!("; the engine's disk ({dir}) has {} free", human(free)),
        _ => "; the engine's free disk is read only beside it".to_string(),
    };
    format!(
        "benches hold {} (images, base layers included, and what their containers wrote){free}",
        human(r.total())
    )
}
