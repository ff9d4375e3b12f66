//! `status`: one issue's bench (its services and their limits) and its last deploy, as lines
//! or JSON.

use super::*;

/// Limits as people read them: `512 MiB, 1.5 CPUs, 256 processes`.
fn resources(r: &crate::app::inspect::Resources) -> String {
    format!(
        "{} MiB, {} CPUs, {} processes",
        r.memory_bytes / (1024 * 1024),
        r.cpus,
        r.pids
    )
}

impl Report for Status {
    fn json(&self) -> Value {
        to_json(self)
    }
    fn human(&self) -> Vec<Line> {
        let mut out = vec![];
        match &self.bench {
            None => out.push(format!("{} has no bench", self.issue)),
            Some(b) => {
                out.push(format!("issue:    {}", b.issue));
                out.push(format!("state:    {}", state_of(b)));
                if let Some(since) = b.sleeping_since {
                    out.push(format!(
                        "sleeping: since {}; `benchctl wake {}` (or a deploy, or a request \
                         through serve's proxy) wakes it",
                        crate::clock::utc(since),
                        b.issue
                    ));
                }
                out.push(format!(
                    "address:  {}",
                    b.url.clone().unwrap_or_else(|| "-".into())
                ));
                out.push(format!("branch:   {}", b.branch));
                out.push(format!("commit:   {}", b.commit));
                out.push(format!("image:    {}", b.image));
                out.push(format!("age:      {}", age(b.age_seconds)));
                for s in &b.services {
                    out.push(format!(
                        "service:  {} {}{} {}{}{}",
                        s.name,
                        s.state,
                        s.health
                            .as_ref()
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default(),
                        s.image,
                        s.url.as_ref().map(|u| format!(" {u}")).unwrap_or_default(),
                        s.limits
                            .as_ref()
                            .map(|l| format!(" [{}]", resources(l)))
                            .unwrap_or_default()
                    ));
                }
                if let Some(r) = &b.resources {
                    out.push(format!(
                        "resources: {} at most, the limits of its {} running service(s)",
                        resources(r),
                        r.services.unwrap_or(0)
                    ));
                }
            }
        }
        if let Some(last) = &self.last_deploy {
            let commit = if last.commit.is_empty() {
                String::new()
            } else {
                format!(" of {}", short_commit(&last.commit))
            };
            out.push(format!(
                "last deploy: {}{commit} (branch {}) at {}",
                last.result,
                last.branch,
                crate::clock::utc(last.at)
            ));
            if !last.message.is_empty() {
                out.push(format!("  {}", last.message.replace('\n', "\n  ")));
            }
        }
        out.into_iter().map(Line::Out).collect()
    }
    fn code(&self) -> i32 {
        if self.bench.is_some() {
            exit::OK
        } else {
            exit::FAILURE
        }
    }
}
