//! The cap on running benches (`--max-running`): six deploys at once under a cap of three
//! never run more than three benches (the least recently used is put to sleep to make room),
//! and when only pinned benches run, a deploy or a wake fails with exit 2 naming the cap and
//! them. A Compose bench makes room the same way.

use crate::support::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEYS: [&str; 8] = [
    "CAP-1", "CAP-2", "CAP-3", "CAP-4", "CAP-5", "CAP-6", "CAP-7", "CAP-8",
];

/// The running bench containers of this test's issues (markers and build steps aside).
fn running_benches() -> usize {
    docker_lines(&[
        "ps",
        "--filter",
        "label=benchctl.managed=true",
        "--format",
        "{{.Label \"benchctl.issue\"}}|{{.Label \"benchctl.role\"}}",
    ])
    .iter()
    .filter(|l| l.starts_with("CAP-") && l.ends_with('|'))
    .count()
}

/// `benchctl deploy feature/<key>` from `repo` under a cap of three running benches.
fn deploy_capped(repo: &str, key: &str) -> Run {
    run(benchctl().args([
        "deploy",
        &format!("feature/{key}"),
        "--repo",
        repo,
        "--no-link",
        "--max-running",
        "3",
    ]))
}

fn states() -> Vec<(String, String)> {
    let r = run(benchctl().args(["list", "--json"]));
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["issue"].as_str().is_some_and(|i| i.starts_with("CAP-")))
        .map(|b| {
            (
                b["issue"].as_str().unwrap().to_string(),
                b["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn concurrent_deploys_do_not_overshoot_the_cap_and_pinned_benches_are_never_evicted() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&KEYS);
    let repo = AppRepo::new();
    for key in KEYS {
        repo.branch_with(&format!("feature/{key}"), &format!("{key}\n"));
    }
    // watch what runs while the six deploys race
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, most) = (stop.clone(), most.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                most.fetch_max(running_benches(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let deploys: Vec<_> = KEYS[..6]
        .iter()
        .map(|key| {
            let path = repo.path_str();
            let key = key.to_string();
            std::thread::spawn(move || deploy_capped(&path, &key))
        })
        .collect();
    for d in deploys {
        let r = d.join().unwrap();
        assert_eq!(r.code, 0, "{}", r.all());
    }
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let seen = most.load(Ordering::SeqCst);
    assert!(seen <= 3, "{seen} benches ran at once under a cap of 3");
    let s = states();
    let running: Vec<&String> = s
        .iter()
        .filter(|(_, st)| st.starts_with("running"))
        .map(|(i, _)| i)
        .collect();
    let sleeping = s.iter().filter(|(_, st)| st == "sleeping").count();
    assert_eq!((running.len(), sleeping), (3, 3), "{s:?}");
    // what it saves: the totals by group, with the memory each reserves when it runs
    let r = run(benchctl().args(["list", "--json", "--totals"]));
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let t = &v["totals"];
    assert!(t["running"]["count"].as_u64() >= Some(3), "{t}");
    assert!(t["sleeping"]["count"].as_u64() >= Some(3), "{t}");
    let each = 512i64 << 20; // the default memory limit
    assert!(
        t["sleeping"]["memory_bytes"].as_i64() >= Some(3 * each),
        "{t}"
    );
    assert!(v["benches"].as_array().is_some_and(|b| b.len() >= 6), "{v}");
    let r = run(benchctl().args(["list"]));
    assert!(r.stdout.contains(" MiB freed)"), "{}", r.stdout);

    // only pinned benches run: a deploy and a wake are refused, naming the cap and the pins
    for i in &running {
        assert_eq!(run(benchctl().args(["pin", i])).code, 0);
    }
    let r = run(benchctl().args(["list"]));
    assert!(r.stdout.contains(" pinned"), "{}", r.stdout);
    let r = deploy_capped(&repo.path_str(), "CAP-7");
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--max-running"), "{}", r.all());
    for i in &running {
        assert!(r.stderr.contains(i.as_str()), "names {i}: {}", r.all());
    }
    let asleep = s
        .iter()
        .find(|(_, st)| st == "sleeping")
        .map(|(i, _)| i.clone())
        .unwrap();
    let wake = || run(benchctl().args(["wake", &asleep, "--max-running", "3"]));
    let r = wake();
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("pinned"), "{}", r.all());

    // one unpinned: the wake puts it to sleep to make room
    let freed = running[0].clone();
    assert_eq!(run(benchctl().args(["unpin", &freed])).code, 0);
    let r = wake();
    assert_eq!(r.code, 0, "{}", r.all());
    let s = states();
    let state = |i: &str| s.iter().find(|(k, _)| k == i).unwrap().1.clone();
    assert_eq!(state(&freed), "sleeping", "{s:?}");
    assert!(state(&asleep).starts_with("running"), "{s:?}");
    assert_eq!(running_benches(), 3);
    for i in &running {
        run(benchctl().args(["unpin", i]));
    }

    // a Compose bench (its image built before it asks for room) makes room the same way
    git(repo.path(), &["checkout", "-q", "feature/CAP-8"]);
    repo.write("compose.yaml", &web_compose(&[]));
    repo.commit("a Compose bench");
    let r = deploy_capped(&repo.path_str(), "CAP-8");
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("to make room"), "{}", r.all());
    let s = states();
    assert!(
        s.iter()
            .any(|(i, st)| i == "CAP-8" && st.starts_with("running")),
        "{s:?}"
    );
    assert_eq!(running_benches(), 3, "{s:?}");
}
