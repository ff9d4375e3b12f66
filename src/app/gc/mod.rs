//! `benchctl gc`: removes benches of closed issues, benches past their TTL, leftovers of
//! interrupted deploys, abandoned locks, and images benchctl built that nothing uses. It finds
//! everything by benchctl's labels and touches nothing else.

use crate::app::lock::LockOptions;
use crate::app::lock::{self, IssueLock};
use crate::app::{inspect, record, teardown};
use crate::engine::{labels, ContainerInfo, Engine, ImageInfo};
use crate::naming::container_name;
use crate::output::{Event, SharedReporter};
use crate::tracker::TrackerClient;
use crate::Result;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

mod stacks;

#[derive(Debug, Clone)]
pub struct GcOptions {
    pub dry_run: bool,
    /// Benches not redeployed for longer than this are removed (off: `None`).
    pub ttl: Option<Duration>,
    /// Tracker status keys that count as closed.
    pub closed_statuses: Vec<String>,
    /// Only benches (and images) of this repository (`benchctl.repo`).
    pub scope: Option<String>,
    pub field: String,
    pub clear_link: bool,
    /// Cached clones live here; those unused for longer than `cache_max_age` are removed.
    pub cache_dir: std::path::PathBuf,
    pub cache_max_age: Duration,
    /// Also remove benchctl's build layers that no image stands on (what killed builds left).
    pub build_cache: bool,
    /// An issue carrying this Tracker tag keeps its bench from expiring, as a pin does.
    pub pin_tag: Option<String>,
    /// When each issue's bench was last used (serve's idle clock): `ttl` counts from the
    /// later of that and its last deploy.
    pub last_used: std::collections::HashMap<String, u64>,
    /// How long a removed bench's teardown hook may run (`max-hook-timeout`).
    pub hook_limit: Duration,
}

/// One thing gc removed (or, with `--dry-run`, would remove).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GcAction {
    /// `teardown`, `remove-container`, `rename`, `remove-lock`, `remove-image`, `remove-clone`,
    /// `remove-checkout`, `remove-result`, `remove-layer`, `remove-pin`, `remove-sleep`.
    pub action: String,
    pub target: String,
    pub reason: String,
}

/// Parses `90s`, `30m`, `12h`, `3d`, `2w` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    let secs = n.checked_mul(mult)?;
    (secs <= crate::settings::values::MAX_SECONDS).then(|| Duration::from_secs(secs))
}

pub async fn gc(
    engine: &Engine,
    tracker: Option<&TrackerClient>,
    opts: &GcOptions,
    reporter: &SharedReporter,
    lock_opts: LockOptions,
) -> Result<Vec<GcAction>> {
    let mut actions = Vec::new();
    // gc never waits for a lock: an issue being deployed keeps what it has
    let instant = LockOptions {
        timeout: Duration::ZERO,
        ..lock_opts
    };
    let mut act = |action: &str, target: &str, reason: String| {
        reporter.report(Event::Done(format!(
            "{}{action} {target}: {reason}",
            if opts.dry_run { "would " } else { "" }
        )));
        actions.push(GcAction {
            action: action.to_string(),
            target: target.to_string(),
            reason,
        });
    };

    // Benches, by issue, within the scope.
    let all = inspect::benches(engine, None).await?;
    let in_scope = |c: &ContainerInfo| match &opts.scope {
        Some(repo) => c.labels.get(labels::REPO) == Some(repo),
        None => true,
    };
    let mut by_issue: BTreeMap<String, Vec<ContainerInfo>> = BTreeMap::new();
    for c in all.iter().filter(|c| in_scope(c)) {
        if let Some(issue) = c.labels.get(labels::ISSUE) {
            by_issue.entry(issue.clone()).or_default().push(c.clone());
        }
    }
    // Abandoned locks (holder gone, or lease over).
    reporter.report(Event::Step("looking for abandoned locks".into()));
    for h in lock::all_locks(engine).await? {
        if opts.scope.is_some() && !by_issue.contains_key(&h.issue) && h.repo != opts.scope {
            continue;
        }
        if let Some(why) = h.stale_because() {
            if !opts.dry_run {
                engine.markers.remove(&h.marker).await?;
            }
            act("remove-lock", &h.holder, why);
        }
    }

    // Pins: a pinned bench does not expire; a pin past its time goes.
    let now = crate::clock::now_unix();
    let pins = crate::app::pin::pins(engine).await?;
    for p in pins.iter().filter(|p| !p.holds(now)) {
        if !opts.dry_run {
            crate::app::pin::unpin(engine, &p.issue).await?;
        }
        act("remove-pin", &p.issue, "its --until passed".into());
    }
    let pinned = |issue: &str| crate::app::pin::active(&pins, issue, now).is_some();

    reporter.report(Event::Step(format!(
        "checking {} issue(s) with benches",
        by_issue.len()
    )));
    for (issue, containers) in &by_issue {
        // Closed in the Tracker?
        let (mut reason, tagged) = closed(tracker, issue, opts, reporter).await;
        // Past its TTL?
        if let (None, Some(_), true) = (&reason, opts.ttl, pinned(issue) || tagged) {
            reporter.report(Event::Info(format!(
                "{issue} is pinned: it does not expire"
            )));
        } else if let (None, Some(ttl)) = (&reason, opts.ttl) {
            let last = containers
                .iter()
                .filter_map(|c| c.labels.get(labels::DEPLOYED_AT)?.parse::<u64>().ok())
                .chain(opts.last_used.get(issue).copied())
                .max();
            if let Some(last) = last {
                let idle = crate::clock::now_unix().saturating_sub(last);
                if idle > ttl.as_secs() {
                    reason = Some(format!(
                        "neither redeployed nor used for {idle} s (--ttl {} s)",
                        ttl.as_secs()
                    ));
                }
            }
        }
        if let Some(reason) = reason {
            if !opts.dry_run {
                let field = opts.field.as_str();
                let keep = teardown::Keep {
                    link: !opts.clear_link,
                    volumes: false,
                    hook_limit: opts.hook_limit,
                };
                let done =
                    teardown::teardown(issue, engine, tracker, field, keep, reporter, lock_opts)
                        .await;
                // one bench that cannot go keeps none of the others
                if let Err(e) = done {
                    reporter.report(Event::Warn(format!(
                        "{issue} was not removed ({reason}): {e}"
                    )));
                    act("teardown-failed", issue, e.to_string());
                    continue;
                }
            }
            act("teardown", issue, reason);
            continue;
        }
        // Leftovers of interrupted deploys: converge to one bench named after the issue.
        let final_name = container_name(issue);
        let leftovers = containers.iter().any(|c| c.name != final_name);
        if !leftovers {
            continue;
        }
        let held = if opts.dry_run {
            None
        } else {
            match IssueLock::acquire(engine, issue, "gc", None, instant, reporter).await {
                Ok(l) => Some(l),
                Err(_) => {
                    reporter.report(Event::Info(format!(
                        "{issue} is being deployed; its leftovers are left to that deploy"
                    )));
                    continue;
                }
            }
        };
        let has_final = containers.iter().any(|c| c.name == final_name);
        let mut keep: Option<&ContainerInfo> = None;
        if !has_final {
            // a deploy died between removing the old bench and renaming the new one
            keep = containers.iter().filter(|c| c.running).max_by_key(|c| {
                c.labels
                    .get(labels::DEPLOYED_AT)
                    .and_then(|d| d.parse::<u64>().ok())
            });
            if let Some(k) = keep {
                if !opts.dry_run {
                    engine.benches.promote(&k.id, &final_name).await?;
                }
                act(
                    "rename",
                    &k.name,
                    format!("it is {issue}'s only running bench; it becomes {final_name}"),
                );
            }
        }
        for c in containers
            .iter()
            .filter(|c| c.name != final_name && Some(c.id.as_str()) != keep.map(|k| k.id.as_str()))
        {
            if !opts.dry_run {
                engine.benches.remove(&c.id).await?;
            }
            act(
                "remove-container",
                &c.name,
                "left by an interrupted deploy".into(),
            );
        }
        if let Some(l) = held {
            l.release(engine).await?;
        }
    }

    let has_bench = |issue: &str| {
        all.iter()
            .any(|c| c.labels.get(labels::ISSUE).map(String::as_str) == Some(issue))
    };

    // A multi-service bench's parts whose bench is gone.
    for a in stacks::leftovers(engine, tracker, opts, &all, instant, reporter).await? {
        act(&a.action, &a.target, a.reason);
    }

    // Results of deploys of issues that have no bench (e.g. a first deploy that failed).
    for marker in engine
        .markers
        .list(&[
            format!("{}=true", labels::MANAGED),
            format!("{}=result", labels::ROLE),
        ])
        .await?
    {
        let Some(issue) = marker.labels.get(labels::ISSUE) else {
            continue;
        };
        if let Some(repo) = &opts.scope {
            if marker.labels.get(labels::REPO) != Some(repo) {
                continue;
            }
        }
        if has_bench(issue) {
            continue;
        }
        if !opts.dry_run {
            record::LastDeploy::forget(engine, issue).await?;
        }
        act(
            "remove-result",
            issue,
            "the recorded result of a deploy of an issue without a bench".into(),
        );
    }

    // Sleep markers of issues that have no bench (one torn down by hand with docker rm).
    for m in crate::app::sleep::all(engine).await? {
        if has_bench(&m.issue) || opts.scope.is_some() {
            continue;
        }
        if !opts.dry_run {
            crate::app::sleep::forget(engine, &m.issue).await?;
        }
        act(
            "remove-sleep",
            &m.issue,
            "the sleep marker of an issue without a bench".into(),
        );
    }

    // Build steps of deploys killed in their commit step (an issue being deployed keeps its
    // own: the step may be that deploy's).
    let mut stepped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, l) in engine
        .images
        .build_steps(&[format!("{}=true", labels::MANAGED)])
        .await?
    {
        let Some(issue) = l.get(labels::ISSUE) else {
            continue;
        };
        if opts.scope.is_none() || l.get(labels::REPO) == opts.scope.as_ref() {
            stepped.entry(issue.clone()).or_default().push(name);
        }
    }
    for (issue, names) in stepped {
        if !opts.dry_run {
            let Ok(held) = IssueLock::acquire(engine, &issue, "gc", None, instant, reporter).await
            else {
                continue;
            };
            let removed = engine
                .images
                .remove_build_steps(&labels::issue_filter(&issue))
                .await;
            held.release_or_warn(engine, reporter).await;
            removed?;
        }
        for name in names {
            act(
                "remove-container",
                &name,
                format!("a build step of an interrupted deploy of {issue}"),
            );
        }
    }

    // Checkouts of deploys that were killed (a live deploy holds its own).
    let dirs = crate::git::checkout::sweep(&opts.cache_dir, opts.dry_run).map_err(|e| {
        crate::Error::Engine(format!(
            "cannot sweep the checkouts in {}: {e}",
            opts.cache_dir.display()
        ))
    })?;
    for d in dirs {
        act(
            "remove-checkout",
            &d.display().to_string(),
            "the checkout of a deploy that was killed".into(),
        );
    }

    // Cached clones nobody used for long (a clone in use is locked: never removed).
    let repos = opts.cache_dir.join("repos");
    if let Ok(entries) = std::fs::read_dir(&repos) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if dir.extension().is_none_or(|e| e != "git") || !dir.is_dir() {
                continue;
            }
            if let Some(scope) = &opts.scope {
                let spec = crate::git::RepoSpec {
                    location: scope.clone(),
                    is_local: false,
                };
                if crate::git::cache_path(&opts.cache_dir, &spec) != dir {
                    continue;
                }
            }
            let used = std::fs::metadata(dir.join(crate::git::LAST_USED))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let idle = used.unwrap_or(Duration::MAX);
            if idle <= opts.cache_max_age {
                continue;
            }
            let lock_path = dir.with_extension("lock");
            let Ok(Some(guard)) = crate::git::FileLock::try_exclusive(&lock_path) else {
                continue;
            };
            if !opts.dry_run {
                std::fs::remove_dir_all(&dir).map_err(|e| {
                    crate::Error::Engine(format!("cannot remove {}: {e}", dir.display()))
                })?;
                let _ = std::fs::remove_file(&lock_path);
            }
            drop(guard);
            act(
                "remove-clone",
                &dir.display().to_string(),
                format!(
                    "cached clone unused for more than {} s",
                    opts.cache_max_age.as_secs()
                ),
            );
        }
    }

    // Images benchctl built that no bench uses.
    let benches = engine
        .benches
        .list(&[format!("{}=true", labels::MANAGED)])
        .await?;
    let used: HashSet<&str> = benches.iter().map(|c| c.image_id.as_str()).collect();
    // A deploy holds its issue's lock from fetch to switch: its fresh image is not garbage.
    let locks = lock::all_locks(engine).await?;
    let locked: HashSet<&str> = locks.iter().map(|h| h.issue.as_str()).collect();
    let lock_starts: Vec<(Option<&str>, u64)> =
        locks.iter().map(|h| (h.repo.as_deref(), h.since)).collect();
    let scoped_issues: HashSet<&String> = by_issue.keys().collect();
    for img in engine
        .images
        .list(&[format!("{}=true", labels::MANAGED)])
        .await?
    {
        let issue = img.labels.get(labels::ISSUE).map(String::as_str);
        // benchctl's own helper images (the marker containers' empty image) are no bench's
        let helper = labels::role(&img.labels).is_some();
        if issue.is_none() && !helper {
            if let Some(why) = layer_verdict(&img, opts, &lock_starts) {
                if !opts.dry_run {
                    if let Err(e) = engine.images.remove(&img.id).await {
                        reporter.report(Event::Warn(format!(
                            "the engine kept build layer {}: {e}",
                            img.id
                        )));
                        continue;
                    }
                }
                act("remove-layer", &img.id, why);
            }
            continue;
        }
        if helper || used.contains(img.id.as_str()) || issue.is_some_and(|i| locked.contains(i)) {
            continue;
        }
        if opts.scope.is_some() {
            match img.labels.get(labels::ISSUE) {
                Some(i) if scoped_issues.contains(i) => {}
                _ => continue,
            }
        }
        if !opts.dry_run {
            engine.images.remove(&img.id).await?;
        }
        let what = img
            .labels
            .get(labels::ISSUE)
            .map(|i| format!("image of {i}"))
            .unwrap_or_else(|| "benchctl image".into());
        act(
            "remove-image",
            &img.id,
            format!("{what}, used by no container"),
        );
    }
    Ok(actions)
}

/// Why `issue` counts as closed (its Tracker status is one of `--closed-statuses`), or `None`
/// (open, or the Tracker cannot tell: a warning); and whether it carries the pin tag
/// (`--pin-tag`, [`crate::app::pin::tagged`]).
async fn closed(
    tracker: Option<&TrackerClient>,
    issue: &str,
    opts: &GcOptions,
    reporter: &SharedReporter,
) -> (Option<String>, bool) {
    let Some(t) = tracker else {
        return (None, false);
    };
    match t.get_issue(issue).await {
        Ok(v) => {
            let status = v
                .pointer("/status/key")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let tagged = opts
                .pin_tag
                .as_deref()
                .is_some_and(|tag| crate::app::pin::tagged(&v, tag));
            let closed = opts
                .closed_statuses
                .iter()
                .any(|s| s == status)
                .then(|| format!("the issue's status is `{status}`"));
            (closed, tagged)
        }
        Err(e) => {
            reporter.report(Event::Warn(format!(
                "cannot tell whether {issue} is closed: {e}"
            )));
            (None, false)
        }
    }
}

/// Whether gc removes a build layer nothing stands on (a leaf: the engine lists only those),
/// and why. Layers are removed only with `--build-cache`, within the scope, and only when made
/// before every deploy of their repository (or of an unknown one) that holds a lock now began:
/// a running build stands on its newest one. `lock_starts`: each lock's repository and start.
fn layer_verdict(
    img: &ImageInfo,
    opts: &GcOptions,
    lock_starts: &[(Option<&str>, u64)],
) -> Option<String> {
    if !opts.build_cache {
        return None;
    }
    if opts.scope.is_some() && img.labels.get(labels::REPO) != opts.scope.as_ref() {
        return None;
    }
    let created = img.created?;
    let repo = img.labels.get(labels::REPO).map(String::as_str);
    let may_build_on =
        |lock_repo: Option<&str>| lock_repo.is_none() || repo.is_none() || lock_repo == repo;
    if lock_starts
        .iter()
        .any(|(lock_repo, since)| may_build_on(*lock_repo) && created >= *since as i64)
    {
        return None;
    }
    Some("a build layer of an interrupted build, tagged by nothing".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("3d"), Some(Duration::from_secs(259_200)));
        assert_eq!(parse_duration("1y"), None);
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_duration("18446744073709551615"), None);
        assert_eq!(parse_duration("18446744073709551615w"), None);
        assert_eq!(parse_duration("53w"), None);
        assert_eq!(
            parse_duration("365d"),
            Some(Duration::from_secs(31_536_000))
        );
    }

    #[test]
    fn build_layers_go_only_when_asked_in_scope_and_older_than_every_running_deploy() {
        let opts = |build_cache, scope: Option<&str>| GcOptions {
            dry_run: false,
            ttl: None,
            closed_statuses: vec![],
            scope: scope.map(String::from),
            field: "bench".into(),
            clear_link: true,
            cache_dir: "/nonexistent".into(),
            cache_max_age: Duration::ZERO,
            build_cache,
            pin_tag: None,
            last_used: Default::default(),
            hook_limit: std::time::Duration::from_secs(600),
        };
        let layer = |repo: &str, created| ImageInfo {
            id: "sha256:1".into(),
            exposed_ports: vec![],
            labels: [
                (labels::MANAGED.to_string(), "true".to_string()),
                (labels::REPO.to_string(), repo.to_string()),
            ]
            .into(),
            created: Some(created),
        };
        let old = layer("/r", 100);
        assert!(layer_verdict(&old, &opts(false, None), &[]).is_none());
        assert!(layer_verdict(&old, &opts(true, None), &[]).is_some());
        assert!(layer_verdict(&old, &opts(true, Some("/r")), &[]).is_some());
        assert!(layer_verdict(&old, &opts(true, Some("/other")), &[]).is_none());
        // a deploy that began before the layer was made may stand on it
        assert!(layer_verdict(&old, &opts(true, None), &[(Some("/r"), 100)]).is_none());
        assert!(layer_verdict(&old, &opts(true, None), &[(None, 99)]).is_none());
        assert!(layer_verdict(&old, &opts(true, None), &[(Some("/r"), 101)]).is_some());
        // another repository's deploy builds on its own layers
        assert!(layer_verdict(&old, &opts(true, None), &[(Some("/other"), 1)]).is_some());
        let unknown_age = ImageInfo {
            created: None,
            ..old.clone()
        };
        assert!(layer_verdict(&unknown_age, &opts(true, None), &[]).is_none());
    }
}
