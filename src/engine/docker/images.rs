//! Docker's image role: classic builds from a streamed context, inspect, commit, list, remove.

use super::{parse_port, DockerEngine};
use crate::engine::endpoint::not_found;
use crate::engine::{labels, BuildKit, BuildSpec, Builder, ContextStream, ImageInfo, Images};
use crate::output::{Event, SharedReporter};
use crate::{Error, Result};
use async_trait::async_trait;
use bollard::models::{BuildInfoAux, ContainerCreateBody, ImageId};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, InspectContainerOptions, ListImagesOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use std::collections::HashMap;

/// A build's error as the engine said it, with what to do where benchctl knows.
fn build_error(message: String) -> Error {
    let message = message.trim().to_string();
    match super::buildkit::hint(&message) {
        Some(h) => Error::Engine(format!("{message}\n{h}")),
        None => Error::Engine(message),
    }
}

impl DockerEngine {
    /// BuildKit builds need an engine of API 1.39 (Docker 18.09) or newer: its version, or
    /// why not.
    async fn buildkit_version(&self) -> std::result::Result<String, String> {
        let v = self.docker.version().await.map_err(|e| e.to_string())?;
        let api = v.api_version.unwrap_or_default();
        let (major, minor) = api
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .unwrap_or((0, 0));
        let version = v.version.unwrap_or_default();
        match (major, minor) >= (1, 39) {
            true => Ok(format!("Docker {version}, API {api}")),
            false => Err(format!(
                "the engine (Docker {version}, API {api}) is older than Docker 18.09 (API 1.39)"
            )),
        }
    }

    /// The engine's local socket (build secrets are served on a session opened there).
    fn local_socket(&self) -> Result<String> {
        match crate::engine::endpoint::Endpoint::from_env(&|k| std::env::var(k).ok())? {
            crate::engine::endpoint::Endpoint::Unix(url) => {
                Ok(url.trim_start_matches("unix://").to_string())
            }
            _ => Err(Error::usage(format!(
                "build secrets are served to the engine's BuildKit on its local socket, but \
                 the engine is at {}; run benchctl on the engine's machine \
                 (DOCKER_HOST=unix://...) or build without secrets",
                crate::engine::endpoint::engine_location()
            ))),
        }
    }
}

#[async_trait]
impl Images for DockerEngine {
    async fn disk(&self) -> Result<crate::engine::disk::DiskUsage> {
        self.disk_usage().await
    }

    async fn build(
        &self,
        spec: &BuildSpec,
        context: ContextStream,
        reporter: &SharedReporter,
    ) -> Result<String> {
        let mut options = BuildImageOptionsBuilder::default();
        if !spec.tag.is_empty() {
            options = options.t(&spec.tag);
        }
        if let Some(t) = &spec.target {
            options = options.target(t);
        }
        let build_args: HashMap<String, String> = spec
            .build_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if spec.network == crate::engine::BuildNetwork::None {
            // both builders: the classic one's steps, and BuildKit's (`force-network-mode`)
            options = options.networkmode("none");
        }
        let options = options
            .dockerfile(&spec.dockerfile)
            .buildargs(&build_args)
            .labels(&spec.labels);
        // benchctl's BuildKit session, served until the build ends
        let mut session = None;
        let options = match spec.builder {
            Builder::Classic => {
                let mut options = options.rm(true).forcerm(true);
                if let Some(l) = &spec.limits {
                    // the build runs the branch's code too: the bench's CPU share, and its
                    // memory where the API's 32-bit field holds it (up to 2 GiB; above, the
                    // build is not limited by memory)
                    if let Ok(memory) = i32::try_from(l.memory_bytes) {
                        options = options.memory(memory).memswap(memory);
                    }
                    let quota = i32::try_from(l.nano_cpus / 10_000)
                        .unwrap_or(i32::MAX)
                        .max(1_000);
                    options = options.cpuperiod(100_000).cpuquota(quota);
                }
                options.version(BuilderVersion::BuilderV1)
            }
            Builder::BuildKit => {
                // the session serves what the engine's BuildKit asks of this process:
                // benchctl's own when the build has secrets (bollard's, opened for the same
                // id, is then refused by the engine and the build uses this one); the caller
                // checked that the engine has BuildKit (`Images::buildkit`)
                let id = format!("benchctl-{:016x}", rand::random::<u64>());
                if !spec.secrets.is_empty() {
                    let socket = self.local_socket()?;
                    session = Some(super::session::open(&socket, &id, spec.secrets.clone()).await?);
                }
                options
                    .version(BuilderVersion::BuilderBuildKit)
                    .session(&id)
            }
        };
        let mut stream = self.docker.build_image(
            options.build(),
            None,
            Some(bollard::body_try_stream(context)),
        );
        let mut image_id = None;
        let mut built_line = None;
        let mut partial = String::new();
        let mut progress = super::buildkit::Progress::default();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(build_error(error))
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(detail) = info.error_detail {
                let msg = detail
                    .message
                    .unwrap_or_else(|| "unknown build error".into());
                return Err(build_error(msg));
            }
            if let Some(text) = info.stream {
                partial.push_str(&text);
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    let line = line.trim_end();
                    if let Some(id) = line.strip_prefix("Successfully built ") {
                        built_line = Some(id.trim().to_string());
                    }
                    if !line.is_empty() {
                        reporter.report(Event::BuildOutput(line.to_string()));
                    }
                }
            }
            match info.aux {
                Some(BuildInfoAux::Default(ImageId { id: Some(id) })) => image_id = Some(id),
                Some(BuildInfoAux::BuildKit(status)) => {
                    for line in progress.lines(&status) {
                        reporter.report(Event::BuildOutput(line));
                    }
                }
                _ => {}
            }
        }
        drop(session);
        if !partial.trim().is_empty() {
            reporter.report(Event::BuildOutput(partial.trim_end().to_string()));
        }
        match image_id.or(built_line) {
            Some(id) => Ok(id),
            // Older engines report the id only through the tag: look it up.
            None => self
                .inspect(&spec.tag)
                .await?
                .map(|i| i.id)
                .ok_or_else(|| Error::Engine("the engine reported no image".into())),
        }
    }

    async fn buildkit(&self) -> std::result::Result<BuildKit, String> {
        let version = self.buildkit_version().await?;
        let bound = match self.local_socket() {
            Err(_) => Err(format!(
                "benchctl cannot see the bound of the engine's BuildKit steps from here (the \
                 engine is at {})",
                crate::engine::endpoint::engine_location()
            )),
            Ok(_) => {
                let info = self.docker.info().await.map_err(|e| e.to_string())?;
                let cgroups = super::CgroupInfo {
                    driver: info
                        .cgroup_driver
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    version: info
                        .cgroup_version
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    mem_total: info.mem_total.unwrap_or(0),
                };
                super::step_bound(&cgroups, std::path::Path::new("/sys/fs/cgroup"))
            }
        };
        Ok(BuildKit { version, bound })
    }

    async fn inspect(&self, name: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(name).await {
            Ok(img) => {
                let cfg = img.config.unwrap_or_default();
                let mut ports: Vec<u16> = cfg
                    .exposed_ports
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| parse_port(p))
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                Ok(Some(ImageInfo {
                    id: img.id.unwrap_or_default(),
                    exposed_ports: ports,
                    labels: cfg.labels.unwrap_or_default(),
                    created: None,
                }))
            }
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn commit(
        &self,
        image: &str,
        changes: &str,
        tag: &str,
        owner: &HashMap<String, String>,
    ) -> Result<String> {
        let info = self.docker.inspect_image(image).await?;
        let cfg = info.config.unwrap_or_default();
        let no_command = cfg.cmd.as_ref().is_none_or(Vec::is_empty)
            && cfg.entrypoint.as_ref().is_none_or(Vec::is_empty);
        let mut changes = changes.to_string();
        let sets_cmd = changes
            .lines()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("CMD"));
        if no_command && !sets_cmd {
            changes.push_str("\nCMD []");
        }
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // an image without a command cannot make a container: give this one a stand-in
            cmd: no_command.then(|| vec!["/benchctl-commit".to_string()]),
            network_disabled: Some(true),
            labels: Some(step_labels(owner)),
            ..Default::default()
        };
        // a commit keeps its container's labels: the step's own are emptied in the image
        let mut image_labels = cfg.labels.clone().unwrap_or_default();
        for key in [labels::ROLE, labels::DEPLOY_ID] {
            image_labels.entry(key.to_string()).or_default();
        }
        let (repo, tag_part) = match tag.rfind(':') {
            Some(i) if !tag[i..].contains('/') => (&tag[..i], &tag[i + 1..]),
            _ => (tag, "latest"),
        };
        let opts = bollard::query_parameters::CommitContainerOptionsBuilder::default()
            .repo(repo)
            .tag(tag_part)
            .changes(&changes)
            .pause(false);
        let docker = self.docker.clone();
        run_step(async move {
            let created = docker
                .create_container(
                    None::<bollard::query_parameters::CreateContainerOptions>,
                    body,
                )
                .await?;
            let result = async {
                let container = docker
                    .inspect_container(&created.id, None::<InspectContainerOptions>)
                    .await?;
                // the container's own configuration, as `docker commit` uses it: `$VAR`s in
                // the changes then expand against the image's environment
                let mut config = container.config.unwrap_or_default();
                config.hostname = None;
                config.labels = Some(image_labels);
                let opts = opts.container(&created.id).build();
                let id = docker.commit_container(opts, config).await?;
                Ok::<String, Error>(id.id)
            }
            .await;
            let _ = super::containers::remove_container(&docker, &created.id).await;
            result
        })
        .await
    }

    async fn settle(&self) {
        // every running step holds STEPS for reading
        let _ = tokio::time::timeout(std::time::Duration::from_secs(60), STEPS.write()).await;
    }

    async fn build_steps(
        &self,
        owner: &[String],
    ) -> Result<Vec<(String, HashMap<String, String>)>> {
        Ok(self
            .step_containers(owner)
            .await?
            .into_iter()
            .map(|(_, name, labels)| (name, labels))
            .collect())
    }

    async fn remove_build_steps(&self, owner: &[String]) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (id, name, _) in self.step_containers(owner).await? {
            super::containers::remove_container(&self.docker, &id).await?;
            removed.push(name);
        }
        Ok(removed)
    }

    async fn list(&self, filter: &[String]) -> Result<Vec<ImageInfo>> {
        let mut filters = HashMap::new();
        filters.insert("label".to_string(), filter.to_vec());
        let opts = ListImagesOptionsBuilder::default()
            .all(false)
            .filters(&filters)
            .build();
        let list = self.docker.list_images(Some(opts)).await?;
        Ok(list
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                exposed_ports: Vec::new(),
                labels: i.labels,
                created: Some(i.created),
            })
            .collect())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let opts = RemoveImageOptionsBuilder::default()
            .force(true)
            .noprune(false)
            .build();
        match self.docker.remove_image(id, Some(opts), None).await {
            Ok(_) => Ok(()),
            Err(e) if not_found(&e) => Ok(()),
            // a forced removal conflicts only with a running container: the task a finished
            // update replaced is still stopping (its grace period), and its image goes with the
            // next deploy, teardown or gc
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) if self.leave_images_in_use => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn pull(&self, image: &str) -> Result<()> {
        let (name, tag) = match image.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t),
            _ => (image, "latest"),
        };
        let opts = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(name)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(step) = stream.next().await {
            step?;
        }
        Ok(())
    }
}

impl DockerEngine {
    /// Build-step containers carrying `owner`: id, name, labels.
    async fn step_containers(
        &self,
        owner: &[String],
    ) -> Result<Vec<(String, String, HashMap<String, String>)>> {
        let mut filter = owner.to_vec();
        filter.push(format!("{}={}", labels::ROLE, labels::BUILD_STEP));
        Ok(super::containers_labelled(&self.docker, &filter)
            .await?
            .into_iter()
            .map(|c| {
                let name =
                    super::plain_name(c.names.as_ref().and_then(|n| n.first()).map(String::as_str));
                (c.id.unwrap_or_default(), name, c.labels.unwrap_or_default())
            })
            .collect())
    }
}

/// Held (shared) by every step while it runs; `settle` waits for them.
static STEPS: std::sync::LazyLock<std::sync::Arc<tokio::sync::RwLock<()>>> =
    std::sync::LazyLock::new(Default::default);

/// Runs a step that makes a short-lived container (labelled with [`step_labels`]) and removes
/// it: to its end even when the deploy is dropped half-way, and an interrupted deploy's
/// cleanup waits for it ([`Images::settle`]) before it removes what its steps left.
pub(crate) async fn run_step<T: Send + 'static>(
    step: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let running = STEPS.clone().read_owned().await;
    tokio::spawn(async move {
        let _running = running;
        step.await
    })
    .await
    .map_err(|e| Error::Engine(format!("a build step failed: {e}")))?
}

/// The labels of a step's container (the commit step, the swarm's look for an HTTP tool):
/// its owner's, and the build-step role.
pub(crate) fn step_labels(owner: &HashMap<String, String>) -> HashMap<String, String> {
    let mut l = owner.clone();
    l.insert(labels::MANAGED.to_string(), "true".to_string());
    l.insert(labels::ROLE.to_string(), labels::BUILD_STEP.to_string());
    l
}
