//! serve's counters and gauges for Prometheus (`/metrics`): jobs, deliveries, clean-up, and
//! the benches' sleep, wake and proxy traffic.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counters for `/metrics`, keyed by name and labels.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let labels = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(",");
        *self
            .counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((name.to_string(), labels))
            .or_default() += 1;
    }

    /// Prometheus text format.
    pub fn render(&self, queued: usize, running: usize) -> String {
        const HELP: &[(&str, &str)] = &[
            (
                "benchctl_webhook_requests_total",
                "Webhook deliveries by source and outcome.",
            ),
            ("benchctl_jobs_total", "Finished jobs by kind and result."),
            (
                "benchctl_gc_actions_total",
                "What serve's clean-up removed, by action.",
            ),
            (
                "benchctl_deploys_total",
                "Deploys run by the service, by result.",
            ),
            (
                "benchctl_transitions_total",
                "Review-flow transitions, by result.",
            ),
            (
                "benchctl_teardowns_total",
                "Teardowns run by the service, by result.",
            ),
            (
                "benchctl_deliveries_refused_total",
                "Authenticated deliveries (or parts) refused, by source and reason.",
            ),
            (
                "benchctl_sleeps_total",
                "Benches put to sleep by serve, by reason.",
            ),
            (
                "benchctl_wakes_total",
                "Sleeping benches woken by serve, by trigger and result.",
            ),
            (
                "benchctl_wakes_refused_total",
                "Wakes the front door refused past --wake-rate or --wake-rate-client (429).",
            ),
            (
                "benchctl_proxy_requests_total",
                "Requests the bench proxy forwarded, by issue.",
            ),
            (
                "benchctl_asleep_pages_total",
                "Pages shown for a bench that did not answer (/asleep), by what it was doing.",
            ),
        ];
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, help) in HELP {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for ((n, labels), v) in counters.iter() {
                if n == name {
                    out.push_str(&format!("{n}{{{labels}}} {v}\n"));
                }
            }
        }
        out.push_str(
            "# HELP benchctl_queue_depth Jobs waiting to run.\n# TYPE benchctl_queue_depth gauge\n",
        );
        out.push_str(&format!("benchctl_queue_depth {queued}\n"));
        out.push_str(
            "# HELP benchctl_jobs_running Jobs running now.\n# TYPE benchctl_jobs_running gauge\n",
        );
        out.push_str(&format!("benchctl_jobs_running {running}\n"));
        out
    }
}

/// The benches on the engine by group (`list --totals`), as gauges: how many, and the memory
/// each group reserves when it runs (the sleeping group's is what their sleep frees).
pub fn render_totals(t: &crate::app::inspect::Totals) -> String {
    let groups = [
        ("running", &t.running),
        ("sleeping", &t.sleeping),
        ("other", &t.other),
        ("pinned", &t.pinned),
    ];
    let mut out = String::from(
        "# HELP benchctl_benches Benches on the engine: running, sleeping, other (stopped or \
         failing), and the pinned among them.\n# TYPE benchctl_benches gauge\n",
    );
    for (name, g) in groups {
        out.push_str(&format!(
            "benchctl_benches{{group=\"{name}\"}} {}\n",
            g.count
        ));
    }
    out.push_str(
        "# HELP benchctl_bench_memory_bytes Memory the benches of each group reserve when they \
         run (their limits).\n# TYPE benchctl_bench_memory_bytes gauge\n",
    );
    for (name, g) in groups {
        out.push_str(&format!(
            "benchctl_bench_memory_bytes{{group=\"{name}\"}} {}\n",
            g.memory_bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_prometheus_text_with_escaped_labels() {
        let m = Metrics::default();
        m.inc("benchctl_deploys_total", &[("result", "deployed")]);
        m.inc("benchctl_deploys_total", &[("result", "deployed")]);
        m.inc(
            "benchctl_jobs_total",
            &[("kind", "a\"b"), ("result", "done")],
        );
        let text = m.render(3, 1);
        assert!(
            text.contains("benchctl_deploys_total{result=\"deployed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("benchctl_jobs_total{kind=\"a\\\"b\",result=\"done\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE benchctl_deploys_total counter\n"));
        assert!(text.contains("benchctl_queue_depth 3\n"));
        assert!(text.contains("benchctl_jobs_running 1\n"));
    }
}
