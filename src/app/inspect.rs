//! Reading benches back from the engine: every bench and its address come from the labels
//! benchctl put on them (list, status, the bench of an issue), nothing else.

use crate::app::record::LastDeploy;
use crate::clock::now_unix;
use crate::engine::{labels, ContainerInfo, Engine};
use crate::naming::container_name;
use crate::Result;
use serde::Serialize;

/// One bench, as `deploy --json` and `list --json` print it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchRecord {
    pub issue: String,
    pub branch: String,
    /// Full commit id.
    pub commit: String,
    pub image: String,
    pub container: String,
    pub url: Option<String>,
    /// Whether the Tracker field was set (deploy); `null` in `list`, which does not ask.
    pub linked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<u64>,
    /// A multi-service bench's services (the bench's own first); empty for one container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceRecord>,
    /// What a multi-service bench's running services may take together (their limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Pinned (`benchctl pin`): it does not expire; `list` tells.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// Until when it is pinned (unix seconds; none: until unpinned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_until: Option<u64>,
    /// Asleep since (unix seconds; `benchctl sleep`, serve's `--sleep-after`, the cap): its
    /// state reads `sleeping`, and it wakes on `benchctl wake`, a deploy or a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleeping_since: Option<u64>,
    /// The memory it reserves while it runs (its limit and its services'), in bytes: what a
    /// sleep frees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<i64>,
}

/// How many benches are in one group, and the memory they reserve when they run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Group {
    pub count: usize,
    pub memory_bytes: i64,
}

/// What `list --totals` and `/metrics` report: the running benches (reserving their memory),
/// the sleeping ones (the memory their sleep frees), the others (stopped or failing), and the
/// pinned ones among all.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    pub running: Group,
    pub sleeping: Group,
    pub other: Group,
    pub pinned: Group,
}

impl Totals {
    pub fn of(records: &[BenchRecord]) -> Totals {
        let mut t = Totals::default();
        for r in records {
            let state = r.state.as_deref().unwrap_or("");
            let group = if r.sleeping_since.is_some() {
                &mut t.sleeping
            } else if state.starts_with("running") {
                &mut t.running
            } else {
                &mut t.other
            };
            let memory = r.memory_bytes.unwrap_or(0);
            group.count += 1;
            group.memory_bytes += memory;
            if r.pinned {
                t.pinned.count += 1;
                t.pinned.memory_bytes += memory;
            }
        }
        t
    }
}

/// Resource limits: of one service, or the total of a bench's running services.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Resources {
    pub memory_bytes: i64,
    pub cpus: f64,
    pub pids: i64,
    /// How many services the figures add up (a total only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<usize>,
}

impl Resources {
    fn of(l: &crate::engine::Limits) -> Resources {
        Resources {
            memory_bytes: l.memory_bytes,
            cpus: l.nano_cpus as f64 / 1e9,
            pids: l.pids,
            services: None,
        }
    }

    /// The total of the running services among `services`.
    pub fn total(services: &[ServiceRecord]) -> Resources {
        let running: Vec<&Resources> = services
            .iter()
            .filter(|s| s.state.starts_with("running"))
            .filter_map(|s| s.limits.as_ref())
            .collect();
        Resources {
            memory_bytes: running.iter().map(|r| r.memory_bytes).sum(),
            cpus: (running.iter().map(|r| r.cpus).sum::<f64>() * 1000.0).round() / 1000.0,
            pids: running.iter().map(|r| r.pids).sum(),
            services: Some(running.len()),
        }
    }
}

/// One service of a multi-service bench.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServiceRecord {
    pub name: String,
    pub state: String,
    pub health: Option<String>,
    pub image: String,
    /// Its address, where it publishes a port (the bench's service).
    pub url: Option<String>,
    /// Its limits: the file's, capped by the bench's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Resources>,
}

fn service_record(c: &ContainerInfo, url: Option<String>) -> ServiceRecord {
    ServiceRecord {
        name: c
            .labels
            .get(crate::app::deploy::stack_plan::SERVICE)
            .cloned()
            .unwrap_or_default(),
        state: c.state.clone(),
        health: c.health.clone(),
        image: c.image.clone(),
        url,
        limits: c
            .labels
            .get(crate::app::deploy::stack_plan::LIMITS)
            .and_then(|v| crate::app::deploy::stack_plan::parse_limits(v))
            .map(|l| Resources::of(&l)),
    }
}

/// Fills the services of the multi-service benches among `records` from `services` (the other
/// services' containers); `benches` are the benches' containers, in `records`' order.
fn with_services(
    records: &mut [BenchRecord],
    benches: &[ContainerInfo],
    services: &[ContainerInfo],
) {
    for (r, b) in records.iter_mut().zip(benches) {
        if !b
            .labels
            .contains_key(crate::app::deploy::stack_plan::SERVICE)
        {
            continue;
        }
        r.services.push(service_record(b, r.url.clone()));
        let mut others: Vec<ServiceRecord> = services
            .iter()
            .filter(|s| s.labels.get(labels::ISSUE) == Some(&r.issue))
            .map(|s| service_record(s, None))
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        r.services.extend(others);
        r.resources = Some(Resources::total(&r.services));
    }
}

/// The other services' containers of every multi-service bench (or of `issue`'s).
pub(crate) async fn service_containers(
    engine: &Engine,
    issue: Option<&str>,
) -> Result<Vec<ContainerInfo>> {
    let mut filter = match issue {
        Some(i) => labels::issue_filter(i),
        None => vec![format!("{}=true", labels::MANAGED)],
    };
    filter.push(format!(
        "{}={}",
        labels::ROLE,
        crate::app::deploy::stack_plan::SERVICE_ROLE
    ));
    engine.stacks.services(&filter).await
}

/// The address of a port published on `public_host`.
pub fn bench_url(public_host: &str, port: u16) -> String {
    if public_host.contains(':') && !public_host.starts_with('[') {
        format!("http://[{public_host}]:{port}/")
    } else {
        format!("http://{public_host}:{port}/")
    }
}

/// The issue's benches (containers with its labels, lock containers excluded).
pub async fn benches(engine: &Engine, issue: Option<&str>) -> Result<Vec<ContainerInfo>> {
    let filter = match issue {
        Some(i) => labels::issue_filter(i),
        None => vec![format!("{}=true", labels::MANAGED)],
    };
    Ok(engine
        .benches
        .list(&filter)
        .await?
        .into_iter()
        .filter(|c| labels::role(&c.labels).is_none())
        .collect())
}

/// A bench's address: its URL template rendered, else `http://<public host>:<host port>/`.
pub fn bench_address(
    public_host: &str,
    host_port: Option<u16>,
    template: Option<&str>,
    issue: &str,
    branch: &str,
    commit: &str,
) -> String {
    let rendered = template.and_then(|t| {
        crate::naming::render_url(
            t,
            &crate::naming::UrlValues {
                issue,
                branch,
                commit,
                port: host_port,
            },
        )
        .ok()
    });
    match (rendered, host_port) {
        (Some(u), _) => u,
        (None, Some(p)) if !public_host.is_empty() => bench_url(public_host, p),
        _ => String::new(),
    }
}

pub fn record_from(c: &ContainerInfo, now: u64) -> BenchRecord {
    let l = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let url = Some(bench_address(
        c.host.as_deref().unwrap_or(&l(labels::PUBLIC_HOST)),
        c.host_port,
        c.labels.get(labels::URL_TEMPLATE).map(String::as_str),
        &l(labels::ISSUE),
        &l(labels::BRANCH),
        &l(labels::COMMIT),
    ))
    .filter(|u| !u.is_empty());
    let deployed = l(labels::DEPLOYED_AT).parse::<u64>().ok();
    let since = deployed.or(c.created.map(|c| c.max(0) as u64));
    BenchRecord {
        issue: l(labels::ISSUE),
        branch: l(labels::BRANCH),
        commit: l(labels::COMMIT),
        image: c.image.clone(),
        container: c.name.clone(),
        url,
        linked: None,
        state: Some(match &c.health {
            Some(h) if c.running => format!("{} ({h})", c.state),
            _ => c.state.clone(),
        }),
        age_seconds: since.map(|s| now.saturating_sub(s)),
        services: Vec::new(),
        resources: None,
        pinned: false,
        pinned_until: None,
        sleeping_since: None,
        memory_bytes: None,
    }
}

/// Marks the records (of `containers`, in their order) whose bench sleeps: state `sleeping`.
async fn with_sleep(
    engine: &Engine,
    records: &mut [BenchRecord],
    containers: &[ContainerInfo],
) -> Result<()> {
    let markers = crate::app::sleep::all(engine).await?;
    let asleep = crate::app::sleep::sleeping(&markers, containers);
    for r in records.iter_mut() {
        if let Some(m) = asleep.get(r.issue.as_str()) {
            r.state = Some("sleeping".to_string());
            r.sleeping_since = Some(m.since);
        }
    }
    Ok(())
}

/// Every bench, found by label, sorted by issue.
pub async fn list(engine: &Engine) -> Result<Vec<BenchRecord>> {
    let mut containers = benches(engine, None).await?;
    containers.sort_by(|a, b| {
        let key = |c: &ContainerInfo| (c.labels.get(labels::ISSUE).cloned(), c.name.clone());
        key(a).cmp(&key(b))
    });
    let now = now_unix();
    let mut out: Vec<BenchRecord> = containers.iter().map(|c| record_from(c, now)).collect();
    let mut services = Vec::new();
    if containers.iter().any(|c| {
        c.labels
            .contains_key(crate::app::deploy::stack_plan::SERVICE)
    }) {
        services = service_containers(engine, None).await?;
        with_services(&mut out, &containers, &services);
    }
    for (r, c) in out.iter_mut().zip(&containers) {
        r.memory_bytes = Some(crate::app::cap::reserved(c, &services, false)).filter(|m| *m > 0);
    }
    with_sleep(engine, &mut out, &containers).await?;
    let pins = crate::app::pin::pins(engine).await?;
    for r in out.iter_mut() {
        if let Some(p) = crate::app::pin::active(&pins, &r.issue, now) {
            r.pinned = true;
            r.pinned_until = p.until;
        }
    }
    Ok(out)
}

/// The issue's bench: the container with the bench's name, else any running one of the issue.
pub async fn find_bench(engine: &Engine, issue: &str) -> Result<Option<ContainerInfo>> {
    let mut containers = benches(engine, Some(issue)).await?;
    let name = container_name(issue);
    containers.sort_by_key(|c| (c.name != name, !c.running));
    Ok(containers.into_iter().next())
}

/// What `status` shows: the bench (if any) and the last deploy's result (if recorded).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub issue: String,
    pub bench: Option<BenchRecord>,
    pub last_deploy: Option<LastDeploy>,
}

/// State, health, address, commit and age of the issue's bench, and its last deploy's result.
pub async fn status(engine: &Engine, issue: &str) -> Result<Status> {
    let bench = match find_bench(engine, issue).await? {
        None => None,
        Some(c) => {
            let mut r = [record_from(&c, now_unix())];
            if c.labels
                .contains_key(crate::app::deploy::stack_plan::SERVICE)
            {
                let services = service_containers(engine, Some(issue)).await?;
                with_services(&mut r, std::slice::from_ref(&c), &services);
            }
            with_sleep(engine, &mut r, std::slice::from_ref(&c)).await?;
            let [r] = r;
            Some(r)
        }
    };
    Ok(Status {
        issue: issue.to_string(),
        bench,
        last_deploy: LastDeploy::load(engine, issue).await?,
    })
}
