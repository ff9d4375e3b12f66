//! Docker's role for multi-service benches: the bench's own bridge network (services reach each
//! other by name), its named volumes, and its services' containers, each labelled from its
//! creation so that list, teardown and gc find all of it. The containers get the same
//! privileges as a single-container bench: no new privileges, a web app's capabilities.

use super::DockerEngine;
use crate::engine::endpoint::not_found;
use crate::engine::{ContainerInfo, HealthSpec, ServiceSpec, Stacks};
use crate::output::{Event, SharedReporter};
use crate::Result;
use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{ListNetworksOptionsBuilder, ListVolumesOptionsBuilder};
use std::collections::HashMap;
use std::time::Duration;

fn nanos(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn health(h: &HealthSpec) -> HealthConfig {
    HealthConfig {
        test: Some(h.test.clone()),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(i64::from),
        start_period: nanos(h.start_period),
        ..Default::default()
    }
}

/// A service's `restart` as the engine's policy. `always` becomes `unless-stopped`: the two
/// differ only for a container stopped on purpose, which `always` starts again when the engine
/// restarts — a sleeping bench would wake by itself (past `--max-running`, with its marker
/// saying it sleeps). A crashed service is restarted either way.
fn restart(policy: Option<&str>) -> RestartPolicy {
    let name = match policy {
        Some("always" | "unless-stopped") => RestartPolicyNameEnum::UNLESS_STOPPED,
        Some("on-failure") => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: None,
    }
}

/// Whether an existing network or volume is the bench's (its issue labels match `want`'s); one
/// of the same name made by anyone else is never used.
pub(crate) fn owned(
    name: &str,
    what: &str,
    found: Option<&HashMap<String, String>>,
    want: &HashMap<String, String>,
) -> Result<()> {
    use crate::engine::labels::{ISSUE, MANAGED};
    let ok = [MANAGED, ISSUE]
        .iter()
        .all(|k| found.and_then(|f| f.get(*k)) == want.get(*k));
    if ok {
        return Ok(());
    }
    Err(crate::Error::Engine(format!(
        "a {what} named `{name}` exists and is not this bench's (its labels differ); benchctl \
         does not use it: remove or rename it"
    )))
}

/// The volumes a service mounts, as the engine takes them (a container's or a task's).
pub(crate) fn volume_mounts(spec: &ServiceSpec) -> Vec<Mount> {
    spec.mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: m.volume.clone(),
            typ: Some(MountType::VOLUME),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect()
}

/// Keeps the last lines of `text` in `last` (20 at most), each reported as it comes.
pub(crate) fn keep_lines(
    text: &str,
    last: &mut std::collections::VecDeque<String>,
    reporter: &SharedReporter,
) {
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        reporter.report(Event::BuildOutput(line.to_string()));
        last.push_back(line.to_string());
        if last.len() > 20 {
            last.pop_front();
        }
    }
}

/// Follows a one-off container's output until it exits (within `timeout`); returns its exit
/// code and last lines.
async fn follow(
    engine: &DockerEngine,
    id: &str,
    what: &str,
    timeout: Duration,
    reporter: &SharedReporter,
) -> Result<(i64, Vec<String>)> {
    use crate::engine::Benches;
    use futures_util::StreamExt;
    let mut last = Default::default();
    let mut logs = engine.logs(id, true, None);
    let read = async {
        while let Some(chunk) = logs.next().await {
            keep_lines(&String::from_utf8_lossy(&chunk?), &mut last, reporter);
        }
        Ok::<_, crate::Error>(())
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| {
        crate::Error::Engine(format!(
            "`{what}` did not finish within {} s",
            timeout.as_secs()
        ))
    })??;
    // the output ends when the container stops; its exit code follows shortly
    for _ in 0..50 {
        if let Some(c) = Benches::inspect(engine, id).await? {
            if !c.running {
                return Ok((c.exit_code.unwrap_or(-1), last.into_iter().collect()));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((-1, last.into_iter().collect()))
}

/// The interface of bench network `name`'s bridge: [`egress::BRIDGE_PREFIX`] and a digest of
/// the name (15 characters, the kernel's limit).
///
/// [`egress::BRIDGE_PREFIX`]: crate::engine::egress::BRIDGE_PREFIX
pub fn bridge_name(name: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!("{}{}", crate::engine::egress::BRIDGE_PREFIX, &digest[..11])
}

#[async_trait]
impl Stacks for DockerEngine {
    async fn ensure_network(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        let internal = labels
            .get(crate::engine::labels::INTERNAL)
            .map(String::as_str);
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone()),
            internal: Some(internal == Some("true")),
            // a bench bridge's interface is named so that the host's firewall knows it
            options: Some(HashMap::from([(
                "com.docker.network.bridge.name".to_string(),
                bridge_name(name),
            )])),
            ..Default::default()
        };
        // the engine allows two networks of one name: look first (the issue's lock keeps a
        // concurrent deploy of the same bench away)
        let opts = None::<bollard::query_parameters::InspectNetworkOptions>;
        match self.docker.inspect_network(name, opts).await {
            Ok(n) => return owned(name, "network", n.labels.as_ref(), labels),
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.docker.create_network(req).await?;
        Ok(())
    }

    async fn ensure_volume(&self, name: &str, labels: &HashMap<String, String>) -> Result<()> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        // creating an existing local volume returns it: it must be this bench's
        let v = self.docker.create_volume(req).await?;
        owned(name, "volume", Some(&v.labels), labels)
    }

    async fn run_service(&self, spec: &ServiceSpec) -> Result<String> {
        let mut exposed = Vec::new();
        let mut bindings = HashMap::new();
        if let Some((port, bind)) = &spec.publish {
            let key = format!("{port}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some(bind.clone()),
                    host_port: Some(String::new()),
                }]),
            );
        }
        let x = &spec.extras;
        // a service in another's network namespace has no network of its own to join
        let own_network = x.network_mode.is_none();
        let endpoint = EndpointSettings {
            aliases: Some(spec.aliases.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            labels: Some(spec.labels.clone()),
            env: (!spec.env.is_empty()).then(|| spec.env.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: spec.health.as_ref().map(health),
            hostname: x.hostname.clone(),
            domainname: x.domainname.clone(),
            stop_signal: x.stop_signal.clone(),
            stop_timeout: x.stop_timeout.map(|d| d.as_secs() as i64),
            tty: Some(x.tty),
            open_stdin: Some(x.open_stdin),
            host_config: Some(HostConfig {
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                network_mode: Some(match &x.network_mode {
                    None => spec.network.clone(),
                    Some(ns) => super::extras::namespace(ns),
                }),
                restart_policy: Some(restart(spec.restart.as_deref())),
                mounts: Some(volume_mounts(spec)),
                tmpfs: (!spec.tmpfs.is_empty()).then(|| {
                    spec.tmpfs
                        .iter()
                        .map(|t| (t.clone(), String::new()))
                        .collect()
                }),
                ..super::extras::host_config(x, super::restricted(&spec.limits, &spec.cap_add))
            }),
            networking_config: own_network.then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), endpoint)])),
            }),
            ..Default::default()
        };
        let name = super::containers::candidate_name(&spec.name, spec.replaces.is_some());
        let mut networks: Vec<(&str, Vec<String>)> = x
            .networks
            .iter()
            .map(|(n, a)| (n.as_str(), a.clone()))
            .collect();
        if let Some(p) = spec.proxy_network.as_deref() {
            networks.push((p, Vec::new()));
        }
        let before = super::containers::Before {
            networks: if own_network { networks } else { Vec::new() },
            copies: &spec.copies,
            platform: x.platform.as_deref(),
        };
        super::containers::create_and_start(&self.docker, &name, body, before).await
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInfo>> {
        crate::engine::Benches::inspect(self, id).await
    }

    async fn run_once(
        &self,
        spec: &ServiceSpec,
        timeout: Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)> {
        let id = self.run_service(spec).await?;
        let what = spec.cmd.clone().unwrap_or_default().join(" ");
        let result = follow(self, &id, &what, timeout, reporter).await;
        let _ = super::remove_container(&self.docker, &id).await;
        result
    }

    async fn services(&self, labels: &[String]) -> Result<Vec<ContainerInfo>> {
        Ok(super::containers_labelled(&self.docker, labels)
            .await?
            .into_iter()
            .map(Self::summary_to_info)
            .collect())
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
        reporter: &SharedReporter,
    ) -> Result<(i64, Vec<String>)> {
        use futures_util::StreamExt;
        let config = bollard::models::ExecConfig {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self.docker.create_exec(id, config).await?;
        let mut last: std::collections::VecDeque<String> = Default::default();
        let run = async {
            if let bollard::exec::StartExecResults::Attached { mut output, .. } =
                self.docker.start_exec(&exec.id, None).await?
            {
                while let Some(chunk) = output.next().await {
                    keep_lines(
                        &String::from_utf8_lossy(&chunk?.into_bytes()),
                        &mut last,
                        reporter,
                    );
                }
            }
            Ok::<_, bollard::errors::Error>(())
        };
        tokio::time::timeout(timeout, run).await.map_err(|_| {
            crate::Error::Engine(format!(
                "`{}` did not finish within {} s",
                cmd.join(" "),
                timeout.as_secs()
            ))
        })??;
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await?
            .exit_code
            .unwrap_or(-1);
        Ok((code, last.into_iter().collect()))
    }

    async fn remove_hooks(&self, labels: &[String]) -> Result<Vec<String>> {
        let mut filter = labels.to_vec();
        filter.push(format!("{}=hook", crate::engine::labels::ROLE));
        let mut removed = Vec::new();
        for c in super::containers_labelled(&self.docker, &filter).await? {
            let c = Self::summary_to_info(c);
            super::remove_container(&self.docker, &c.id).await?;
            removed.push(c.name);
        }
        Ok(removed)
    }

    async fn networks(&self, labels: &[String]) -> Result<Vec<(String, HashMap<String, String>)>> {
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self
            .docker
            .list_networks(Some(opts))
            .await?
            .into_iter()
            .map(|n| (n.name.unwrap_or_default(), n.labels.unwrap_or_default()))
            .collect())
    }

    async fn volumes(&self, labels: &[String]) -> Result<Vec<(String, HashMap<String, String>)>> {
        let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self
            .docker
            .list_volumes(Some(opts))
            .await?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.labels))
            .collect())
    }

    async fn remove_networks(&self, labels: &[String]) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (name, _) in self.networks(labels).await? {
            match self.docker.remove_network(&name).await {
                Ok(()) => removed.push(name),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }

    async fn remove_volumes(&self, labels: &[String]) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (name, _) in self.volumes(labels).await? {
            let opts = None::<bollard::query_parameters::RemoveVolumeOptions>;
            match self.docker.remove_volume(&name, opts).await {
                Ok(()) => removed.push(name),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
}
