//! A Compose bench's limits are the bench's, not each container's: the bench's memory, CPUs
//! and processes (the branch's `limits`, within the operator's ceilings) are shared among its
//! containers (every replica is one), so a bench of twelve containers takes no more of the host
//! than a bench of one. A service's own limit is kept while the bench's total allows it (and
//! leaves the others at least half an equal part); a service without one gets an equal part of
//! what is left; otherwise every part is scaled down alike. Pure, so that the split is tested without an engine.

use crate::compose::{Project, Service};
use crate::engine::Limits;
use std::collections::HashMap;

/// Each service's limits per container.
pub fn shares(project: &Project, web: &str, bench: &Limits) -> HashMap<String, Limits> {
    let names: Vec<&String> = project.services.keys().collect();
    let count = |name: &str, s: &Service| if name == web { 1 } else { s.replicas.max(1) };
    let counts: Vec<u32> = names
        .iter()
        .map(|n| count(n, &project.services[*n]))
        .collect();
    let part = |cap: i64, floor: i64, own: &dyn Fn(&Service) -> Option<i64>| {
        let wants: Vec<(Option<i64>, u32)> = names
            .iter()
            .zip(&counts)
            .map(|(n, c)| (own(&project.services[*n]), *c))
            .collect();
        split(cap, &wants, floor)
    };
    let memory = part(bench.memory_bytes, MIN_MEMORY, &|s| s.limits.memory);
    let cpus = part(bench.nano_cpus, MIN_NANO_CPUS, &|s| {
        s.limits.cpus.map(|c| (c * 1e9) as i64)
    });
    let pids = part(bench.pids, MIN_PIDS, &|s| s.limits.pids);
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let l = Limits {
                memory_bytes: memory[i],
                nano_cpus: cpus[i],
                pids: pids[i],
            };
            (n.to_string(), l)
        })
        .collect()
}

/// The least a container gets: the engine refuses less than 6 MiB of memory.
const MIN_MEMORY: i64 = 6 << 20;
const MIN_NANO_CPUS: i64 = 10_000_000;
const MIN_PIDS: i64 = 8;

/// `cap` split among services that want `(own limit, containers)`: see the module's header.
fn split(cap: i64, wants: &[(Option<i64>, u32)], floor: i64) -> Vec<i64> {
    let cap = i128::from(cap.max(0));
    let containers: i128 = wants.iter().map(|(_, c)| i128::from(*c)).sum();
    if containers == 0 {
        return Vec::new();
    }
    let own: Vec<Option<i128>> = wants
        .iter()
        .map(|(w, _)| w.map(|w| i128::from(w).clamp(0, cap)))
        .collect();
    let asked: i128 = own
        .iter()
        .zip(wants)
        .filter_map(|(o, (_, c))| o.map(|o| o * i128::from(*c)))
        .sum();
    let open: i128 = own
        .iter()
        .zip(wants)
        .filter(|(o, _)| o.is_none())
        .map(|(_, (_, c))| i128::from(*c))
        .sum();
    let equal = cap / containers;
    let rest = match open {
        0 => None,
        n => Some((cap - asked) / n),
    };
    // the services' own limits stand while those without one keep half an equal part
    let fits = asked <= cap && rest.is_none_or(|r| r >= equal / 2);
    let weighed: Vec<i128> = own.iter().map(|o| o.unwrap_or(equal)).collect();
    let total: i128 = weighed
        .iter()
        .zip(wants)
        .map(|(w, (_, c))| w * i128::from(*c))
        .sum::<i128>()
        .max(1);
    own.iter()
        .zip(&weighed)
        .map(|(o, w)| {
            let v = match (fits, o, rest) {
                (true, Some(o), _) => *o,
                (true, None, Some(r)) => r,
                _ => w * cap / total,
            };
            (v as i64).max(floor)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(parts: &[i64], wants: &[(Option<i64>, u32)]) -> i64 {
        parts
            .iter()
            .zip(wants)
            .map(|(p, (_, c))| p * i64::from(*c))
            .sum()
    }

    #[test]
    fn a_bench_total_is_shared_and_never_exceeded() {
        // nobody asks: equal parts
        let w = [(None, 1), (None, 1)];
        assert_eq!(split(512, &w, 0), vec![256, 256]);
        // one asks for little: it keeps it, the other gets the rest
        let w = [(Some(64), 1), (None, 1)];
        assert_eq!(split(512, &w, 0), vec![64, 448]);
        // twelve containers of one service share the total
        let w = [(None, 1), (None, 11)];
        let parts = split(1200, &w, 0);
        assert_eq!(parts, vec![100, 100]);
        assert!(total(&parts, &w) <= 1200);
        // the wants exceed the total: scaled alike
        let w = [(Some(400), 1), (Some(400), 1)];
        assert_eq!(split(400, &w, 0), vec![200, 200]);
        // a want above the total leaves the others an equal part, scaled
        let w = [(Some(10_000), 1), (None, 3)];
        let parts = split(400, &w, 0);
        assert!(total(&parts, &w) <= 400, "{parts:?}");
        assert!(parts[1] > 0);
        // the floor holds
        assert_eq!(split(10, &[(None, 12)], 6), vec![6]);
    }
}
