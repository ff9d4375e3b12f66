//! From arguments to what the commands run with: the backend, the Tracker, the messengers,
//! the settings layers (flags and environment, `--config`) and a deploy's request.

use super::args::*;
use crate::app::request::{BenchSettings, DeployRequest, Machine, Policy, RunState};
use crate::naming;
use crate::notify::{Notifier, Templates};
use crate::output::SharedReporter;
use crate::secret::ProcessEnv;
use crate::settings::{flags, keys, merge, read_local, Effective, Layer, Origin};
use crate::tracker::config::TokenFiles;
use crate::tracker::TrackerClient;
use crate::{env, Error, Result};
use clap::parser::ValueSource;
use clap::ArgMatches;
use std::path::PathBuf;
use std::time::Duration;

impl EngineArgs {
    /// The backend, from flags, the environment and the local config file BENCHCTL_CONFIG
    /// names, for commands without `--config` (none of them pushes an image).
    pub fn backend(&self) -> Result<crate::engine::Backend> {
        let path = env::var(env::CONFIG).map(PathBuf::from);
        let local = path.as_deref().map(read_local).transpose()?;
        Ok(self.resolve(local.as_ref(), None)?.0)
    }

    /// The backend from flags, the environment and the command's `--config` file (`local`),
    /// with the registry's credentials (deploys push images; a credential helper is only
    /// asked here).
    pub fn pushing_backend(&self, local: Option<&Layer>) -> Result<crate::engine::Backend> {
        let mut backend = self.resolve(local, None)?.0;
        if let crate::engine::Backend::Swarm(o) = &mut backend {
            if let Some(r) = &o.registry {
                o.credentials = crate::engine::swarm::registry::registry_auth(r)?;
            }
        }
        Ok(backend)
    }

    /// The backend (without credentials) and the settings it was made of; `m` (the command's
    /// matches) tells whether a value came from a flag or its variable.
    fn resolve(
        &self,
        local: Option<&Layer>,
        m: Option<&ArgMatches>,
    ) -> Result<(crate::engine::Backend, Effective)> {
        let mut explicit = Layer::default();
        let given = [
            (&keys::BACKEND, &self.backend),
            (&keys::PUBLISH_MODE, &self.publish_mode),
            (&keys::REGISTRY, &self.registry),
        ];
        for (key, value) in given {
            if let Some(v) = value {
                let origin = m.map_or(Origin::Flag(key.flag_text()), |m| flags::origin(key, m));
                explicit.set(key.name, v, origin);
            }
        }
        let mut layers = vec![&explicit];
        layers.extend(local);
        let e = merge(&layers);
        let set = |key: &keys::Key| e.origin(key.name).is_some_and(|o| *o != Origin::Default);
        let backend = match e.get(&keys::BACKEND).unwrap_or("docker") {
            "swarm" => crate::engine::Backend::Swarm(crate::engine::swarm::SwarmOptions {
                publish_mode: e.get(&keys::PUBLISH_MODE).unwrap_or("ingress").parse()?,
                registry: e.get(&keys::REGISTRY).map(str::to_string),
                credentials: None,
            }),
            _ => {
                let stray = [&keys::PUBLISH_MODE, &keys::REGISTRY];
                if let Some(key) = stray.into_iter().find(|k| set(k)) {
                    return Err(Error::usage(format!(
                        "{} only applies to --backend swarm (BENCHCTL_BACKEND=swarm); the \
                         docker backend runs benches on its own engine",
                        key.flag_text()
                    )));
                }
                crate::engine::Backend::Docker
            }
        };
        Ok((backend, e))
    }

    /// The backend settings as `config` shows them (the swarm's only on the swarm backend).
    pub(crate) fn rows(
        &self,
        local: Option<&Layer>,
        m: &ArgMatches,
    ) -> Result<Vec<crate::settings::Row>> {
        let (backend, e) = self.resolve(local, Some(m))?;
        let shown = match backend {
            crate::engine::Backend::Docker => &keys::ENGINE_KEYS[..1],
            crate::engine::Backend::Swarm(_) => keys::ENGINE_KEYS,
        };
        Ok(crate::settings::rows(&e, shown))
    }
}

impl LockArgs {
    pub(crate) fn options(&self) -> crate::app::lock::LockOptions {
        crate::app::lock::LockOptions {
            timeout: Duration::from_secs(self.lock_timeout),
            lease: Duration::from_secs(self.lock_lease.max(1)),
        }
    }
}

/// `--cache-dir` (or `BENCHCTL_CACHE_DIR`), else the user's cache directory.
pub(crate) fn cache_dir(flag: &Option<PathBuf>) -> Result<PathBuf> {
    let dir = match flag {
        Some(d) => d.clone(),
        None => crate::git::default_cache_dir()?,
    };
    crate::git::private_dir(&dir)?;
    Ok(dir)
}

pub(crate) fn branch_from_ci() -> Option<String> {
    env::CI_BRANCH_VARS.iter().find_map(|v| env::var(v))
}

/// The Tracker the arguments and environment configure (none is fine); its retries are told
/// to `reporter`.
pub(crate) fn tracker_client(
    args: &TrackerArgs,
    reporter: &crate::output::SharedReporter,
) -> Result<Option<TrackerClient>> {
    let files = TokenFiles {
        oauth: args.tracker_token_file.clone(),
        iam: args.tracker_iam_token_file.clone(),
    };
    Ok(
        crate::tracker::config::tracker_config(&ProcessEnv, args.tracker_url.as_deref(), &files)?
            .map(|c| TrackerClient::new(c).reporting_to(reporter.clone())),
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

/// What a use case needs besides the engine: the Tracker (when it links) and the messengers.
pub(crate) struct Services {
    tracker: Option<TrackerClient>,
    notifier: Notifier,
    code_hosts: crate::feedback::CodeHosts,
}

/// The code hosts the environment has tokens for, with the operator's `--code-host*`.
pub(crate) fn code_hosts(
    args: &crate::cli::args::CodeHostArgs,
) -> Result<crate::feedback::CodeHosts> {
    let overrides = crate::feedback::Overrides {
        kind: args
            .code_host
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(Error::usage)?,
        api: args.code_host_api.clone(),
        repo: args.code_host_repo.clone(),
    };
    if let Some(u) = &args.dashboard_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(Error::usage(format!(
                "--dashboard-url {u}: give the dashboard's address as people open it \
                 (http://… or https://…)"
            )));
        }
    }
    Ok(
        crate::feedback::CodeHosts::from_env(&ProcessEnv, overrides)?
            .with_pr_comment(args.pr_comment, args.dashboard_url.clone()),
    )
}

impl Services {
    /// The Tracker is configured only when the command `links` (writes or clears the field).
    pub(crate) fn new(
        args: &TrackerArgs,
        code_host: &crate::cli::args::CodeHostArgs,
        links: bool,
        reporter: &crate::output::SharedReporter,
    ) -> Result<Self> {
        let tracker = if links {
            tracker_client(args, reporter)?
        } else {
            None
        };
        Ok(Services {
            tracker,
            notifier: notifier()?,
            code_hosts: code_hosts(code_host)?,
        })
    }

    pub(crate) fn context<'a>(
        &'a self,
        engine: &'a crate::engine::Engine,
        reporter: &'a crate::output::SharedReporter,
        lock: crate::app::lock::LockOptions,
    ) -> crate::app::Context<'a> {
        crate::app::Context {
            engine,
            tracker: self.tracker.as_ref(),
            reporter,
            notifier: &self.notifier,
            code_hosts: &self.code_hosts,
            lock,
        }
    }
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
    let mut layer = args.keys.layer(&args.env_files)?;
    flags::given(&mut layer, &keys::FIELD, field, m);
    flags::given(&mut layer, &keys::ISSUE_PATTERN, issue_pattern, m);
    Ok(layer)
}

/// The `--config` file as a layer.
pub(crate) fn local_layer(args: &BenchArgs) -> Result<Option<Layer>> {
    args.config.as_deref().map(read_local).transpose()
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

/// Every input of a deploy of a branch, resolved from the arguments before any work starts
/// (bad input: exit 2, nothing done); the branch's own `benchctl.toml` joins them in
/// [`DeployInputs::resolve`] or [`crate::settings::prepare`].
pub(crate) struct DeployInputs {
    pub base: DeployRequest,
    pub explicit: Layer,
    /// The `--config` file (read once: the backend's settings come from it too).
    pub local: Option<Layer>,
    pub repo: crate::git::RepoSpec,
    pub branch: String,
    pub issue: Option<String>,
    pub templates_dir: Option<PathBuf>,
}

impl DeployInputs {
    pub fn settings(&self) -> crate::settings::Inputs<'_> {
        crate::settings::Inputs {
            base: &self.base,
            explicit: &self.explicit,
            local: self.local.as_ref(),
            issue: self.issue.as_deref(),
            templates_dir: self.templates_dir.as_deref(),
        }
    }

    /// The settings a deploy would use and where each came from (the branch's config read at
    /// its head; blocking git in place), without checking there is something to build.
    pub fn resolve(
        &self,
        reporter: &SharedReporter,
    ) -> Result<(DeployRequest, crate::settings::Effective)> {
        tokio::task::block_in_place(|| {
            crate::settings::resolve(&self.settings(), self.repo.clone(), &self.branch, reporter)
        })
    }
}

pub(crate) fn deploy_inputs(
    source: &SourceArgs,
    bench: &BenchArgs,
    tracker: &TrackerArgs,
    link: bool,
    force: bool,
    m: &ArgMatches,
) -> Result<DeployInputs> {
    let branch = branch_of(source)?;
    if let Some(k) = &source.issue {
        naming::normalize_issue_key(k)?;
    }
    Ok(DeployInputs {
        explicit: explicit_layer(
            bench,
            tracker.field.as_deref(),
            source.issue_pattern.as_deref(),
            m,
        )?,
        local: local_layer(bench)?,
        base: base_request(bench, link, force)?,
        repo: crate::git::resolve_repo(source.repo.as_deref())?,
        branch,
        issue: source.issue.clone(),
        templates_dir: env::var(env::TEMPLATES_DIR).map(PathBuf::from),
    })
}

/// A duration flag's value (`10m`, `12h`, `3d`), or an error naming the flag.
pub fn duration(flag: &str, v: &str) -> Result<Duration> {
    crate::app::gc::parse_duration(v).ok_or_else(|| {
        Error::usage(format!(
            "{flag} `{v}` is not a duration (e.g. 10m, 12h, 3d)"
        ))
    })
}

/// The settings no config file holds (bind address, public host, cache, link, force); the
/// rest is filled in by [`crate::settings::resolve`].
pub fn base_request(args: &BenchArgs, link: bool, force: bool) -> Result<DeployRequest> {
    args.bind
        .parse::<std::net::IpAddr>()
        .map_err(|_| Error::usage(format!("--bind `{}` is not an IP address", args.bind)))?;
    let drain = duration("--traefik-drain", &args.traefik_drain)?;
    let router = match (&args.router, &args.network) {
        (Some(_), Some(network)) => Some(crate::app::routing::Router {
            network: network.clone(),
            entrypoint: args.traefik_entrypoint.clone(),
            cert_resolver: args.traefik_cert_resolver.clone(),
            drain,
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
    let mut cap_add = Vec::new();
    for c in &args.cap_add {
        let cap = c.trim().to_ascii_uppercase();
        let cap = cap.strip_prefix("CAP_").unwrap_or(&cap).to_string();
        if cap.is_empty() || !cap.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_') {
            return Err(Error::usage(format!(
                "--cap-add `{}` is not a capability name (e.g. NET_RAW)",
                c.escape_debug()
            )));
        }
        cap_add.push(cap);
    }
    Ok(DeployRequest {
        repo: crate::git::RepoSpec {
            location: String::new(),
            is_local: false,
        },
        branch: String::new(),
        issue: String::new(),
        // the rest is filled in from the settings by `crate::settings::apply`
        bench: BenchSettings {
            bind: args.bind.clone(),
            public_host: crate::settings::public_host(args.public_host.as_deref(), &ProcessEnv),
            router,
            cap_add,
            build_timeout: std::time::Duration::from_secs(args.build_timeout.max(1)),
            builder: args.builder.parse().map_err(Error::usage)?,
            build_network: crate::engine::BuildNetwork::parse(&args.build_network)
                .unwrap_or_default(),
            egress: crate::engine::egress::Egress::parse(&args.egress).unwrap_or_default(),
            allow_images: crate::build::allow::ImagePolicy::parse(&args.allow_images),
            min_free_disk: args.min_free_disk,
            build_secrets: args
                .build_secrets
                .iter()
                .map(|s| crate::app::request::parse_build_secret(s))
                .collect::<std::result::Result<_, _>>()
                .map_err(Error::usage)?,
            ..BenchSettings::default()
        },
        policy: Policy {
            field: String::new(),
            link,
            force,
            comments: args.tracker_comment.parse().map_err(Error::usage)?,
        },
        machine: Machine {
            cache_dir: cache_dir(&args.cache_dir)?,
            engine_host: crate::settings::remote_engine_host(&ProcessEnv),
            cap: Default::default(),
        },
        run: RunState::default(),
    })
}

pub(crate) fn review_target(flag: &str) -> Option<String> {
    let t = flag.trim();
    (!t.is_empty() && t != "none").then(|| t.to_string())
}

/// Where `serve` keeps its queue: `--state-dir`, else `$XDG_STATE_HOME/benchctl`, else
/// `~/.local/state/benchctl`.
pub(crate) fn state_dir(flag: &Option<PathBuf>) -> Result<PathBuf> {
    let dir = match (flag, env::var("XDG_STATE_HOME"), env::var("HOME")) {
        (Some(d), _, _) => d.clone(),
        (None, Some(d), _) => PathBuf::from(d).join("benchctl"),
        (None, None, Some(h)) => PathBuf::from(h).join(".local/state/benchctl"),
        (None, None, None) => {
            return Err(Error::usage(format!(
                "no state directory: HOME is not set; pass --state-dir <DIR> or set {} \
                 (benchctl does not fall back to a shared temporary directory)",
                env::STATE_DIR
            )))
        }
    };
    crate::git::private_dir(&dir)?;
    Ok(dir)
}

/// For `config` and `templates`: the inputs of a deploy of the branch (given, or the CI
/// system's); `None` without a branch.
pub(crate) fn shown_inputs(args: &ConfigArgs, m: &ArgMatches) -> Result<Option<DeployInputs>> {
    if args.source.branch.is_none() && branch_from_ci().is_none() {
        return Ok(None);
    }
    deploy_inputs(&args.source, &args.bench, &args.tracker, true, false, m).map(Some)
}
