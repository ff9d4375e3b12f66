//! A Compose service's files on a swarm: each file it copies in (a secret, a config, a bind
//! mount of one of the branch's files) becomes a swarm config, named by the bench and its
//! content (`benchctl-<issue>-file-<digest>`), labelled like the bench's other parts so that
//! teardown and gc remove it, and mounted at its target in every task. A directory cannot be a
//! swarm config: it is refused, naming the swarm. The keys a swarm task runs as written are
//! mapped here too ([`extras`]).

use super::SwarmEngine;
use crate::engine::{labels, ContainerExtras, CopyContent, CopySpec, ServiceSpec};
use crate::{Error, Result};
use bollard::models::{
    ConfigSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs,
    TaskSpecContainerSpecDnsConfig, TaskSpecContainerSpecFile1,
};
use std::collections::HashMap;

/// The role of a service's file among benchctl's swarm configs (markers are configs too).
const FILE_ROLE: &str = "file";

/// The labels a bench's file carries, taken from its service's: what teardown and gc find.
fn owner(spec: &ServiceSpec) -> HashMap<String, String> {
    let keys = [
        labels::MANAGED,
        labels::ISSUE,
        labels::BACKEND,
        labels::REPO,
    ];
    let mut l: HashMap<String, String> = keys
        .iter()
        .filter_map(|k| spec.labels.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    l.insert(labels::ROLE.to_string(), FILE_ROLE.to_string());
    // the web service's labels are a bench's, which name no backend
    l.insert(labels::BACKEND.to_string(), "swarm".to_string());
    l
}

/// A copy's bytes: a file of the checkout or text; a directory is refused.
fn bytes(c: &CopySpec, service: &str) -> Result<Vec<u8>> {
    match &c.content {
        CopyContent::Bytes(b) => Ok(b.clone()),
        CopyContent::Path(p) if p.is_dir() => Err(Error::usage(format!(
            "service `{service}` copies the directory {} into {}: a swarm hands a service \
             files (swarm configs), not directories; copy files one by one, build them into \
             the image, or deploy to containers (`--backend docker`)",
            p.file_name().unwrap_or_default().to_string_lossy(),
            c.target
        ))),
        CopyContent::Path(p) => {
            std::fs::read(p).map_err(|e| Error::Engine(format!("cannot read {}: {e}", p.display())))
        }
    }
}

impl SwarmEngine {
    /// The swarm configs of `spec`'s copies, made when missing.
    pub(super) async fn files(
        &self,
        spec: &ServiceSpec,
    ) -> Result<Vec<TaskSpecContainerSpecConfigs>> {
        use base64::Engine as _;
        use sha2::Digest;
        let service = spec
            .aliases
            .first()
            .map(String::as_str)
            .unwrap_or(&spec.name);
        let issue = spec.labels.get(labels::ISSUE).cloned().unwrap_or_default();
        let mut out = Vec::new();
        for c in &spec.copies {
            let data = bytes(c, service)?;
            let digest = hex::encode(&sha2::Sha256::digest(&data)[..6]);
            let name = format!("benchctl-{}-file-{digest}", crate::naming::slug(&issue, 60));
            let id = match self.docker().inspect_config(&name).await {
                Ok(found) => {
                    let found_labels = found.spec.as_ref().and_then(|s| s.labels.as_ref());
                    crate::engine::docker::owned(
                        &name,
                        "swarm config",
                        found_labels,
                        &owner(spec),
                    )?;
                    found.id.unwrap_or_default()
                }
                Err(e) if crate::engine::endpoint::not_found(&e) => {
                    let made = self
                        .docker()
                        .create_config(ConfigSpec {
                            name: Some(name.clone()),
                            labels: Some(owner(spec)),
                            data: Some(base64::engine::general_purpose::STANDARD.encode(&data)),
                            ..Default::default()
                        })
                        .await?;
                    made.id
                }
                Err(e) => return Err(e.into()),
            };
            out.push(TaskSpecContainerSpecConfigs {
                file: Some(TaskSpecContainerSpecFile1 {
                    name: Some(c.target.clone()),
                    uid: Some(c.uid.to_string()),
                    gid: Some(c.gid.to_string()),
                    mode: Some(c.mode.unwrap_or(0o444)),
                }),
                config_id: Some(id),
                config_name: Some(name),
                ..Default::default()
            });
        }
        Ok(out)
    }

    /// Removes the services' files (swarm configs of [`FILE_ROLE`]) labelled with `filter`;
    /// returns their names. Markers, configs too, are not files.
    pub(super) async fn remove_configs(&self, filter: &[String]) -> Result<Vec<String>> {
        let mut filter = filter.to_vec();
        filter.push(format!("{}={FILE_ROLE}", labels::ROLE));
        let filters = HashMap::from([("label".to_string(), filter)]);
        let opts = bollard::query_parameters::ListConfigsOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut removed = Vec::new();
        for c in self.docker().list_configs(Some(opts)).await? {
            let name = c.spec.and_then(|s| s.name).unwrap_or_default();
            match self.docker().delete_config(&c.id.unwrap_or_default()).await {
                Ok(()) => removed.push(name),
                Err(e) if crate::engine::endpoint::not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
}

/// `x`'s keys a swarm task runs, on `c`. The rest ([`ContainerExtras::asked`] minus these) is
/// refused by the caller.
pub(super) fn extras(x: &ContainerExtras, c: &mut TaskSpecContainerSpec) {
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    c.hostname = x.hostname.clone();
    c.stop_signal = x.stop_signal.clone();
    c.stop_grace_period = x
        .stop_timeout
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    c.init = x.init;
    c.tty = Some(x.tty);
    c.open_stdin = Some(x.open_stdin);
    c.read_only = Some(x.read_only);
    c.groups = list(&x.group_add);
    // a swarm's hosts entries are `address name`
    c.hosts = list(
        &x.extra_hosts
            .iter()
            .filter_map(|h| h.split_once(':').map(|(n, a)| format!("{a} {n}")))
            .collect(),
    );
    if !(x.dns.is_empty() && x.dns_search.is_empty() && x.dns_options.is_empty()) {
        c.dns_config = Some(TaskSpecContainerSpecDnsConfig {
            nameservers: list(&x.dns),
            search: list(&x.dns_search),
            options: list(&x.dns_options),
        });
    }
    c.sysctls = (!x.sysctls.is_empty()).then(|| x.sysctls.iter().cloned().collect());
    c.ulimits = crate::engine::docker::ulimits(x);
}

/// What of `x` a swarm task does not run, by Compose names.
pub(super) fn unsupported(x: &ContainerExtras) -> Vec<&'static str> {
    const RUN: &[&str] = &[
        "hostname",
        "init",
        "tty/stdin_open",
        "ulimits",
        "sysctls",
        "extra_hosts",
        "dns",
    ];
    x.asked().into_iter().filter(|k| !RUN.contains(k)).collect()
}
