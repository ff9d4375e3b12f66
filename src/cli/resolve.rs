//! From arguments to what the commands run with: the backend, the Tracker, the messengers,
//! the settings layers (flags and environment, `--config`) and a deploy's request.

use super::args::*;
use crate::app::request::DeployRequest;
use crate::config::{self, ProcessEnv, TokenFiles};
use crate::engine::Limits;
use crate::naming;
use crate::notify::{Notifier, Templates};
use crate::output::SharedReporter;
use crate::settings::{FileConfig, Layer, LimitsConfig, Origin};
use crate::tracker::TrackerClient;
use crate::{env, Error, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use std::path::PathBuf;
use std::time::Duration;

impl EngineArgs {
    /// The backend, from flags, the environment and the local config file `config` (the
    /// command's `--config`, else BENCHCTL_CONFIG), for commands that never push an image.
    pub fn backend(&self, config: Option<&std::path::Path>) -> Result<crate::engine::Backend> {
        Ok(self.resolve(config)?.0)
    }

    /// [`Self::backend`] with the registry's credentials (deploys push images); a credential
    /// helper is only asked here.
    pub fn pushing_backend(
        &self,
        config: Option<&std::path::Path>,
    ) -> Result<crate::engine::Backend> {
        let mut backend = self.backend(config)?;
        if let crate::engine::Backend::Swarm(o) = &mut backend {
            if let Some(r) = &o.registry {
                o.credentials = crate::engine::swarm::registry::registry_auth(r)?;
            }
        }
        Ok(backend)
    }

    /// The backend (without credentials), and the local config file's path and contents.
    pub(crate) fn resolve(
        &self,
        config: Option<&std::path::Path>,
    ) -> Result<(crate::engine::Backend, Option<PathBuf>, FileConfig)> {
        let from_env = env::var(env::CONFIG).map(PathBuf::from);
        let path = config.map(PathBuf::from).or(from_env);
        let file = match &path {
            Some(p) => crate::settings::read_local(p)?,
            None => FileConfig::default(),
        };
        let backend = self
            .backend
            .clone()
            .or(file.backend.clone())
            .unwrap_or("docker".into());
        let publish_mode = self.publish_mode.clone().or(file.publish_mode.clone());
        let registry = self.registry.clone().or(file.registry.clone());
        match backend.as_str() {
            "docker" => {
                let stray = [
                    ("--publish-mode", publish_mode.is_some()),
                    ("--registry", registry.is_some()),
                ];
                if let Some((flag, _)) = stray.iter().find(|(_, set)| *set) {
                    return Err(Error::usage(format!(
                        "{flag} only applies to --backend swarm (BENCHCTL_BACKEND=swarm); the \
                         docker backend runs benches on its own engine"
                    )));
                }
                Ok((crate::engine::Backend::Docker, path, file))
            }
            "swarm" => {
                let publish_mode = publish_mode.as_deref().unwrap_or("ingress").parse()?;
                let options = crate::engine::swarm::SwarmOptions {
                    publish_mode,
                    registry,
                    credentials: None,
                };
                Ok((crate::engine::Backend::Swarm(options), path, file))
            }
            other => Err(Error::usage(format!(
                "unknown backend `{other}`: use `docker` or `swarm`"
            ))),
        }
    }
}

impl EngineArgs {
    /// The backend settings as `config` shows them: key, value, origin.
    pub(crate) fn rows(
        &self,
        config: Option<&std::path::Path>,
        m: &ArgMatches,
    ) -> Result<Vec<(&'static str, String, String)>> {
        let (backend, path, file) = self.resolve(config)?;
        let origin = |flag: &Option<String>, in_file: bool, id: &str, name: &str, var: &str| {
            if flag.is_some() {
                origin_of(m, id, name, Some(var)).to_string()
            } else if in_file {
                format!(
                    "--config {}",
                    path.as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            } else {
                "default".to_string()
            }
        };
        let mut rows = vec![];
        let (name, swarm) = match &backend {
            crate::engine::Backend::Docker => ("docker", None),
            crate::engine::Backend::Swarm(o) => ("swarm", Some(o)),
        };
        rows.push((
            "backend",
            name.to_string(),
            origin(
                &self.backend,
                file.backend.is_some(),
                "backend",
                "--backend",
                env::BACKEND,
            ),
        ));
        if let Some(o) = swarm {
            let mode = match o.publish_mode {
                crate::engine::swarm::PublishMode::Ingress => "ingress",
                crate::engine::swarm::PublishMode::Host => "host",
            };
            rows.push((
                "publish-mode",
                mode.to_string(),
                origin(
                    &self.publish_mode,
                    file.publish_mode.is_some(),
                    "publish_mode",
                    "--publish-mode",
                    env::PUBLISH_MODE,
                ),
            ));
            rows.push((
                "registry",
                o.registry.clone().unwrap_or_else(|| "-".into()),
                origin(
                    &self.registry,
                    file.registry.is_some(),
                    "registry",
                    "--registry",
                    env::REGISTRY,
                ),
            ));
        }
        Ok(rows)
    }
}

impl LockArgs {
    pub(crate) fn options(&self) -> crate::lock::LockOptions {
        crate::lock::LockOptions {
            timeout: Duration::from_secs(self.lock_timeout),
            lease: Duration::from_secs(self.lock_lease.max(1)),
        }
    }
}

/// `--cache-dir` (or `BENCHCTL_CACHE_DIR`), else the user's cache directory.
pub(crate) fn cache_dir(flag: &Option<PathBuf>) -> PathBuf {
    flag.clone().unwrap_or_else(crate::git::default_cache_dir)
}

pub(crate) fn branch_from_ci() -> Option<String> {
    env::CI_BRANCH_VARS.iter().find_map(|v| env::var(v))
}

pub(crate) fn tracker_client(args: &TrackerArgs) -> Result<Option<TrackerClient>> {
    let files = TokenFiles {
        oauth: args.tracker_token_file.clone(),
        iam: args.tracker_iam_token_file.clone(),
    };
    Ok(
        config::tracker_config(&ProcessEnv, args.tracker_url.as_deref(), &files)?
            .map(TrackerClient::new),
    )
}

/// The messengers configured in the environment (none is fine).
pub(crate) fn notifier() -> Result<Notifier> {
    Notifier::from_env(
        &ProcessEnv,
        Templates {
            dir: env::var(env::TEMPLATES_DIR).map(PathBuf::from),
        },
    )
}

/// The origin of a flag's value: the command line or its environment variable.
pub(crate) fn origin_of(m: &ArgMatches, id: &str, flag: &str, var: Option<&str>) -> Origin {
    match (m.value_source(id), var) {
        (Some(ValueSource::EnvVariable), Some(v)) => Origin::Env(v.to_string()),
        _ => Origin::Flag(flag.to_string()),
    }
}

/// What flags and the environment say about settings a config file may also hold.
pub(crate) fn explicit_layer(
    args: &BenchArgs,
    field: Option<&str>,
    issue_pattern: Option<&str>,
    m: &ArgMatches,
) -> Result<Layer> {
    let mut c = FileConfig::default();
    let mut origins = std::collections::BTreeMap::new();
    let mut set = |key: &str, id: &str, flag: &str, var: Option<&str>| {
        origins.insert(key.to_string(), origin_of(m, id, flag, var));
    };
    // a value given by flag (or its variable) goes into the layer with where it came from
    macro_rules! take {
        ($value:expr, $field:ident, $key:literal, $id:literal, $flag:literal, $var:expr) => {
            if let Some(v) = $value {
                c.$field = Some(v.to_owned());
                set($key, $id, $flag, $var);
            }
        };
    }
    take!(
        &args.dockerfile,
        dockerfile,
        "dockerfile",
        "dockerfile",
        "--dockerfile",
        None
    );
    take!(
        &args.template,
        template,
        "template",
        "template",
        "--template",
        None
    );
    take!(&args.target, target, "target", "target", "--target", None);
    take!(&args.port, port, "port", "port", "--port", None);
    take!(
        &args.health_path,
        health_path,
        "health-path",
        "health_path",
        "--health-path",
        None
    );
    take!(
        &args.ready_timeout,
        ready_timeout,
        "ready-timeout",
        "ready_timeout",
        "--ready-timeout",
        None
    );
    take!(
        &args.url_template,
        url_template,
        "url-template",
        "url_template",
        "--url-template",
        Some("BENCHCTL_URL_TEMPLATE")
    );
    take!(
        field,
        field,
        "field",
        "field",
        "--field",
        Some(env::BENCH_FIELD)
    );
    take!(
        issue_pattern,
        issue_pattern,
        "issue-pattern",
        "issue_pattern",
        "--issue-pattern",
        Some(env::ISSUE_PATTERN)
    );
    let mut limits = LimitsConfig::default();
    if let Some(v) = &args.memory {
        limits.memory = Some(v.clone());
        set("limits.memory", "memory", "--memory", None);
    }
    if let Some(v) = args.cpus {
        limits.cpus = Some(v);
        set("limits.cpus", "cpus", "--cpus", None);
    }
    if let Some(v) = args.pids_limit {
        limits.pids = Some(v);
        set("limits.pids", "pids_limit", "--pids-limit", None);
    }
    c.limits = Some(limits);
    let mut build_args = std::collections::BTreeMap::new();
    for a in &args.build_args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("--build-arg `{a}` is not NAME=VALUE")))?;
        build_args.insert(k.to_string(), v.to_string());
        origins.insert(
            format!("build-args.{k}"),
            Origin::Flag("--build-arg".into()),
        );
    }
    c.build_args = (!build_args.is_empty()).then_some(build_args);
    // env files first: --env wins over them
    let mut bench_env = std::collections::BTreeMap::new();
    for f in &args.env_files {
        for (k, v) in crate::settings::read_env_file(f)? {
            origins.insert(format!("env.{k}"), Origin::EnvFile(f.display().to_string()));
            bench_env.insert(k, v);
        }
    }
    for e in &args.env {
        let (name, value, origin) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string(), Origin::Flag("--env".into())),
            None => {
                let value = std::env::var(e).map_err(|_| {
                    Error::usage(format!(
                        "--env {e}: {e} is not set in benchctl's environment (pass NAME=VALUE, or export it)"
                    ))
                })?;
                (e.clone(), value, Origin::Env(e.clone()))
            }
        };
        if !crate::settings::valid_env_name(&name) {
            return Err(Error::usage(format!(
                "--env: `{}` is not a variable name",
                name.escape_debug()
            )));
        }
        origins.insert(format!("env.{name}"), origin);
        bench_env.insert(name, value);
    }
    c.env = (!bench_env.is_empty()).then_some(bench_env);
    Ok(Layer { config: c, origins })
}

/// The `--config` file as a layer.
pub(crate) fn local_layer(args: &BenchArgs) -> Result<Option<Layer>> {
    args.config
        .as_ref()
        .map(|p| {
            let c = crate::settings::read_local(p)?;
            Ok(Layer::file(
                c,
                Origin::LocalConfig(format!("--config {}", p.display())),
            ))
        })
        .transpose()
}

/// The branch: given, else the CI system's.
pub(crate) fn branch_of(source: &SourceArgs) -> Result<String> {
    let branch = source
        .branch
        .clone()
        .or_else(branch_from_ci)
        .ok_or_else(|| {
            Error::usage(format!(
                "no branch given; pass one (`benchctl deploy feature/PROJ-42-login`) or run in CI \
             where one of {} is set",
                env::CI_BRANCH_VARS.join(", ")
            ))
        })?;
    naming::validate_branch(&branch)?;
    Ok(branch)
}

/// Resolves every input of a deploy before any work starts (bad input: exit 2, nothing done):
/// the repository's `benchctl.toml` at the branch's head is read here.
pub(crate) fn deploy_request(
    source: &SourceArgs,
    bench: &BenchArgs,
    tracker: &TrackerArgs,
    link: bool,
    force: bool,
    m: &ArgMatches,
    reporter: &SharedReporter,
) -> Result<(DeployRequest, crate::settings::Effective)> {
    let branch = branch_of(source)?;
    if let Some(k) = &source.issue {
        naming::normalize_issue_key(k)?;
    }
    let explicit = explicit_layer(
        bench,
        tracker.field.as_deref(),
        source.issue_pattern.as_deref(),
        m,
    )?;
    let local = local_layer(bench)?;
    let base = base_request(bench, link, force)?;
    let repo = crate::git::resolve_repo(source.repo.as_deref())?;
    let templates_dir = env::var(env::TEMPLATES_DIR).map(PathBuf::from);
    let inputs = crate::settings::Inputs {
        base: &base,
        explicit: &explicit,
        local: local.as_ref(),
        issue: source.issue.as_deref(),
        templates_dir: templates_dir.as_deref(),
    };
    tokio::task::block_in_place(|| crate::settings::resolve(&inputs, repo, &branch, reporter))
}

/// The settings no config file holds (bind address, public host, cache, link, force); the
/// rest is filled in by [`crate::settings::resolve`].
pub fn base_request(args: &BenchArgs, link: bool, force: bool) -> Result<DeployRequest> {
    args.bind
        .parse::<std::net::IpAddr>()
        .map_err(|_| Error::usage(format!("--bind `{}` is not an IP address", args.bind)))?;
    let router = match (&args.router, &args.network) {
        (Some(_), Some(network)) => Some(crate::app::routing::Router {
            network: network.clone(),
            entrypoint: args.traefik_entrypoint.clone(),
            cert_resolver: args.traefik_cert_resolver.clone(),
        }),
        (Some(_), None) => {
            return Err(Error::usage(
                "--router traefik needs --network <name>: the Docker network the proxy watches",
            ))
        }
        (None, Some(_)) => {
            return Err(Error::usage("--network is only used with --router traefik"))
        }
        (None, None) => None,
    };
    Ok(DeployRequest {
        repo: crate::git::RepoSpec {
            location: String::new(),
            is_local: false,
        },
        branch: String::new(),
        issue: String::new(),
        dockerfile: "Dockerfile".into(),
        port: None,
        bind: args.bind.clone(),
        public_host: config::public_host(args.public_host.as_deref(), &ProcessEnv),
        ready_timeout: Duration::from_secs(60),
        limits: Limits::default(),
        field: config::DEFAULT_FIELD.to_string(),
        link,
        force,
        deploy_id: String::new(),
        ready: Default::default(),
        cache_dir: cache_dir(&args.cache_dir),
        build_args: Default::default(),
        target: None,
        health_path: "/".into(),
        env: Vec::new(),
        url_template: None,
        router,
        engine_host: config::remote_engine_host(&ProcessEnv),
        template: None,
        head_hint: None,
    })
}

pub(crate) fn review_target(flag: &str) -> Option<String> {
    let t = flag.trim();
    (!t.is_empty() && t != "none").then(|| t.to_string())
}

/// Where `serve` keeps its queue: `--state-dir`, else `$XDG_STATE_HOME/benchctl`, else
/// `~/.local/state/benchctl`.
pub(crate) fn state_dir(flag: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = flag {
        return d.clone();
    }
    if let Some(d) = env::var("XDG_STATE_HOME") {
        return PathBuf::from(d).join("benchctl");
    }
    match env::var("HOME") {
        Some(h) => PathBuf::from(h).join(".local/state/benchctl"),
        None => std::env::temp_dir().join("benchctl-state"),
    }
}

/// For `config` and `templates`: the deploy a branch (given, or the CI system's) would get;
/// `None` without a branch.
pub(crate) fn resolve_shown(
    args: &ConfigArgs,
    m: &ArgMatches,
    reporter: &SharedReporter,
) -> Result<Option<(DeployRequest, crate::settings::Effective)>> {
    if args.source.branch.is_none() && branch_from_ci().is_none() {
        return Ok(None);
    }
    deploy_request(
        &args.source,
        &args.bench,
        &args.tracker,
        true,
        false,
        m,
        reporter,
    )
    .map(Some)
}
