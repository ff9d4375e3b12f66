//! Command-line interface: parses, resolves settings, calls [`crate::bench`], prints results.

use crate::bench::{self, BenchRecord, DeployRequest};
use crate::config::{self, ProcessEnv, TokenFiles};
use crate::error::exit;
use crate::naming::{self, DEFAULT_ISSUE_PATTERN};
use crate::notify::{Message, Notifier, Templates};
use crate::output::{OutputMode, SharedReporter};
use crate::runtime::Limits;
use crate::secret::redact;
use crate::settings::{FileConfig, Layer, LimitsConfig, Origin};
use crate::tracker::TrackerClient;
use crate::{env, Error, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BENCHCTL_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "benchctl",
    version = VERSION,
    about = "Give every Yandex Tracker issue its own Docker test bench",
    after_help = "Tokens are read from the environment (BENCHCTL_TRACKER_TOKEN or \
                  BENCHCTL_TRACKER_IAM_TOKEN) or from a file, never from a flag.\n\
                  Exit codes: 0 ok, 1 failure, 2 bad input or configuration, 3 bench up but not linked."
)]
pub struct Cli {
    /// Print only a JSON result on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Clone an issue branch, build it, run it, wait until it answers and link it in the Tracker.
    Deploy(DeployArgs),
    /// List every bench benchctl runs on this engine.
    List,
    /// Remove an issue's bench (containers and images) and clear its Tracker field.
    Teardown(TeardownArgs),
    /// Write the address of an issue's running bench into its Tracker field again.
    Link(LinkArgs),
    /// Show an issue's bench: state, health, address, commit, age.
    Status(IssueArg),
    /// Print an issue's bench output.
    Logs(LogsArgs),
    /// Remove benches of closed issues, benches past --ttl, leftovers of interrupted deploys,
    /// abandoned locks, and unused images (only what carries benchctl's labels).
    Gc(GcArgs),
    /// Run the webhook service: pull request reviews move issues, pushes redeploy benches,
    /// closed issues lose their bench.
    Serve(ServeArgs),
    /// Set up the Tracker for benchctl.
    #[command(subcommand)]
    Tracker(TrackerCommand),
    /// List the Dockerfile templates for branches without a Dockerfile; with a branch, say
    /// which one its deploy would use and why.
    Templates(ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish): e.g.
    /// `benchctl completions bash > /etc/bash_completion.d/benchctl`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), generated from these definitions:
    /// `benchctl man > /usr/local/share/man/man1/benchctl.1`.
    Man,
    /// Show the settings a deploy of the branch would use and where each comes from (flags,
    /// environment, --config, the branch's benchctl.toml, defaults); secrets redacted.
    Config(ConfigArgs),
}

/// Where benches run (flags > environment > the `--config` file > `docker`).
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Where benches run: `docker` (containers on the engine) or `swarm` (one-replica services
    /// on the swarm the engine manages; README: Swarm).
    #[arg(long, global = true, env = "BENCHCTL_BACKEND", value_name = "BACKEND",
          help_heading = "Where benches run",
          value_parser = ["docker", "swarm"])]
    pub backend: Option<String>,

    /// How a swarm bench publishes its port: `ingress` (the routing mesh, default; reachable
    /// on every node) or `host` (on the node the bench runs on).
    #[arg(long, global = true, env = "BENCHCTL_PUBLISH_MODE", value_name = "MODE",
          help_heading = "Where benches run",
          value_parser = ["ingress", "host"])]
    pub publish_mode: Option<String>,

    /// Registry the swarm backend pushes images to, e.g. `registry.example.com:5000`
    /// (credentials: BENCHCTL_REGISTRY_USER and BENCHCTL_REGISTRY_PASSWORD, else `docker login`).
    #[arg(
        long,
        global = true,
        env = "BENCHCTL_REGISTRY",
        value_name = "HOST",
        help_heading = "Where benches run"
    )]
    pub registry: Option<String>,
}

impl EngineArgs {
    /// The backend, from flags, the environment and the local config file `config` (the
    /// command's `--config`, else BENCHCTL_CONFIG), for commands that never push an image.
    pub fn backend(&self, config: Option<&std::path::Path>) -> Result<crate::runtime::Backend> {
        Ok(self.resolve(config)?.0)
    }

    /// [`Self::backend`] with the registry's credentials (deploys push images); a credential
    /// helper is only asked here.
    pub fn pushing_backend(
        &self,
        config: Option<&std::path::Path>,
    ) -> Result<crate::runtime::Backend> {
        let mut backend = self.backend(config)?;
        if let crate::runtime::Backend::Swarm(o) = &mut backend {
            if let Some(r) = &o.registry {
                o.credentials = registry_auth(r)?;
            }
        }
        Ok(backend)
    }

    /// The backend (without credentials), and the local config file's path and contents.
    fn resolve(
        &self,
        config: Option<&std::path::Path>,
    ) -> Result<(crate::runtime::Backend, Option<PathBuf>, FileConfig)> {
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
                Ok((crate::runtime::Backend::Docker, path, file))
            }
            "swarm" => {
                let publish_mode = publish_mode.as_deref().unwrap_or("ingress").parse()?;
                let options = crate::swarm::SwarmOptions {
                    publish_mode,
                    registry,
                    credentials: None,
                };
                Ok((crate::runtime::Backend::Swarm(options), path, file))
            }
            other => Err(Error::usage(format!(
                "unknown backend `{other}`: use `docker` or `swarm`"
            ))),
        }
    }
}

impl EngineArgs {
    /// The backend settings as `config` shows them: key, value, origin.
    fn rows(
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
            crate::runtime::Backend::Docker => ("docker", None),
            crate::runtime::Backend::Swarm(o) => ("swarm", Some(o)),
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
                crate::swarm::PublishMode::Ingress => "ingress",
                crate::swarm::PublishMode::Host => "host",
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

/// Registry credentials: BENCHCTL_REGISTRY_USER with BENCHCTL_REGISTRY_PASSWORD (or its
/// `_FILE`), else what the docker CLI would use (its credential helper for the registry, or
/// the `docker login` entry); none is fine (an open registry).
fn registry_auth(registry: &str) -> Result<Option<crate::swarm::RegistryAuth>> {
    let password = config::secret_from_env(&ProcessEnv, env::REGISTRY_PASSWORD)?;
    match (env::var(env::REGISTRY_USER), password) {
        (Some(username), Some(password)) => {
            return Ok(Some(crate::swarm::RegistryAuth { username, password }))
        }
        (None, None) => {}
        _ => {
            return Err(Error::usage(format!(
                "set both {} and {} (or neither, to use `docker login {registry}`)",
                env::REGISTRY_USER,
                env::REGISTRY_PASSWORD
            )))
        }
    }
    let dir = env::var(env::DOCKER_CONFIG)
        .map(PathBuf::from)
        .or_else(|| env::var("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let Some(text) = dir.and_then(|d| std::fs::read_to_string(d.join("config.json")).ok()) else {
        return Ok(None);
    };
    // as the docker CLI: a configured helper holds the credentials, else the `auths` entry
    match crate::swarm::credential_helper(&text, registry) {
        Some(helper) => crate::swarm::helper_auth(&helper, registry),
        None => Ok(crate::swarm::docker_config_auth(&text, registry)),
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: CompletionShell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum TrackerCommand {
    /// Create the queue's "Bench link" field if missing, print its key, and print (or with
    /// --apply create) the trigger that calls `serve` when an issue closes. Idempotent.
    Init(TrackerInitArgs),
}

#[derive(Debug, Args)]
pub struct TrackerInitArgs {
    /// Queue key (case-sensitive), e.g. PROJ.
    #[arg(long, value_name = "QUEUE")]
    pub queue: String,

    /// Short key of the field to create.
    #[arg(long, default_value = "benchLink", value_name = "KEY")]
    pub field_key: String,

    /// Display name of the field.
    #[arg(long, default_value = "Bench link", value_name = "NAME")]
    pub field_name: String,

    /// Address of `serve`'s Tracker endpoint, e.g. https://bench.example.com/hooks/tracker.
    #[arg(long, value_name = "URL")]
    pub hook_url: Option<String>,

    /// Status key that counts as closed (the trigger's condition).
    #[arg(long, default_value = "closed", value_name = "KEY")]
    pub closed_status: String,

    /// Create the trigger too (it carries BENCHCTL_TRACKER_HOOK_SECRET); without it the
    /// trigger is only printed, with the secret left out.
    #[arg(long)]
    pub apply: bool,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8780", value_name = "ADDR:PORT")]
    pub listen: std::net::SocketAddr,

    /// Where queued jobs and delivery ids are kept (default: `~/.local/state/benchctl`).
    #[arg(long, env = "BENCHCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// A repository the service deploys: its name as the webhooks carry it (`owner/name`,
    /// Bitbucket DC `PROJECT/slug`, GitLab `group/project`) = its clone URL or path. Repeatable.
    #[arg(long = "repo", value_name = "NAME=URL")]
    pub repos: Vec<String>,

    /// Regex that finds the issue key in branch names.
    #[arg(long, env = "BENCHCTL_ISSUE_PATTERN", value_name = "REGEX")]
    pub issue_pattern: Option<String>,

    /// Status an approved pull request moves the issue to (`none`: leave it).
    #[arg(long, default_value = "readyForTest", value_name = "STATUS")]
    pub on_approved: String,

    /// Status a pull request with changes requested moves the issue to (`none`: leave it).
    #[arg(long, default_value = "needsImprovement", value_name = "STATUS")]
    pub on_changes_requested: String,

    /// Status a declined (closed, not merged) pull request moves the issue to (`none`: leave it).
    #[arg(long, default_value = "needsImprovement", value_name = "STATUS")]
    pub on_rejected: String,

    /// Comment the transition with `templates/tracker/review-comment.txt`.
    #[arg(long)]
    pub review_comment: bool,

    #[command(flatten)]
    pub closed: ClosedArgs,

    /// Directory whose files override the built-in templates (same relative paths).
    #[arg(long, env = "BENCHCTL_TEMPLATES_DIR", value_name = "DIR")]
    pub templates_dir: Option<PathBuf>,

    /// Largest accepted webhook body (413 past it).
    #[arg(long, default_value = "5m", value_name = "SIZE")]
    pub max_body: String,

    /// Issues worked on at the same time (jobs of one issue always run one at a time).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub max_parallel: usize,

    /// Runs of a job that fails for a passing reason (Tracker unavailable, lock busy).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub max_attempts: u32,

    /// Seconds before the first retry of such a job (doubling after each).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub retry_delay: u64,

    /// Seconds running jobs get to finish on SIGTERM before they are abandoned (abandoned jobs
    /// run again on the next start).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub shutdown_grace: u64,

    /// Deploy without touching the Tracker field.
    #[arg(long)]
    pub no_link: bool,

    #[command(flatten)]
    pub bench: BenchArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    /// Remove benches not redeployed for longer than this (e.g. 12h, 3d; off by default).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,

    #[command(flatten)]
    pub closed: ClosedArgs,

    /// Only benches of this repository (as given to `deploy --repo`).
    #[arg(long, value_name = "REPO")]
    pub scope: Option<String>,

    /// Leave the Tracker field of removed benches as it is.
    #[arg(long)]
    pub keep_link: bool,

    /// Where cached clones live (default: the user's cache directory, `~/.cache/benchctl`).
    #[arg(long, env = "BENCHCTL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Remove cached clones unused for longer than this.
    #[arg(long, default_value = "14d", value_name = "DURATION")]
    pub cache_max_age: String,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

#[derive(Debug, Args)]
pub struct ClosedArgs {
    /// Tracker status keys that count as closed (comma-separated).
    #[arg(
        long,
        default_value = "closed",
        value_delimiter = ',',
        value_name = "KEYS"
    )]
    pub closed_statuses: Vec<String>,
}

#[derive(Debug, Args)]
pub struct IssueArg {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,

    /// Keep printing what the bench prints.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
}

#[derive(Debug, Args)]
pub struct TrackerArgs {
    /// Tracker field that holds the bench address (a local field's full key `<hex>--benchLink` works).
    #[arg(long, env = "BENCHCTL_BENCH_FIELD", value_name = "KEY")]
    pub field: Option<String>,

    /// Tracker API base URL.
    #[arg(long, env = "BENCHCTL_TRACKER_URL", value_name = "URL")]
    pub tracker_url: Option<String>,

    /// File holding the Tracker OAuth token (instead of BENCHCTL_TRACKER_TOKEN).
    #[arg(long, value_name = "PATH")]
    pub tracker_token_file: Option<PathBuf>,

    /// File holding a Tracker IAM token (instead of BENCHCTL_TRACKER_IAM_TOKEN).
    #[arg(long, value_name = "PATH")]
    pub tracker_iam_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub bench: BenchArgs,

    /// Deploy without touching the Tracker.
    #[arg(long)]
    pub no_link: bool,

    /// A branch without an issue key is not an error: exit 0 and do nothing (for CI jobs that
    /// run on every branch).
    #[arg(long)]
    pub skip_no_issue: bool,

    /// Rebuild and replace even when the bench already serves this commit, and deploy an
    /// older commit over a newer one.
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// Which branch of which repository, and its issue.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// The issue branch, e.g. `feature/PROJ-42-login` (default: the CI system's branch variable).
    pub branch: Option<String>,

    /// Repository: a remote URL (ssh, https, git://) or a local path (default: the repository
    /// around the current directory).
    #[arg(long, value_name = "URL|PATH")]
    pub repo: Option<String>,

    /// Issue key, when the branch name does not carry it.
    #[arg(long, value_name = "KEY")]
    pub issue: Option<String>,

    /// Regex that finds the issue key in the branch name (its first group, or the whole match;
    /// default `(?:^|[^A-Za-z])([A-Za-z]+-[0-9]+)`).
    #[arg(long, env = "BENCHCTL_ISSUE_PATTERN", value_name = "REGEX")]
    pub issue_pattern: Option<String>,
}

/// `benchctl config`: the settings a deploy of the branch would use, and where each comes from.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub bench: BenchArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// How a bench is built and run (shared by `deploy`, `serve` and `config`). Settings that a
/// config file may hold have no default here: flags > environment > `--config` >
/// the branch's `benchctl.toml` > defaults.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A local config file (same format as the repository's `benchctl.toml`).
    #[arg(long, env = "BENCHCTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Dockerfile path inside the repository (default `Dockerfile`).
    #[arg(long, value_name = "PATH")]
    pub dockerfile: Option<String>,

    /// Build with this Dockerfile template instead of the branch's Dockerfile (without it, a
    /// branch that has no Dockerfile gets the template its files suggest; `benchctl templates`).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,

    /// A build argument (repeatable).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,

    /// The Dockerfile stage to build.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Path the readiness probe asks (default `/`: any answer counts; another path must
    /// answer 2xx or 3xx).
    #[arg(long, value_name = "PATH")]
    pub health_path: Option<String>,

    /// A variable of the bench's environment: `NAME=VALUE`, or `NAME` to pass benchctl's own
    /// value (never shown). Repeatable.
    #[arg(long = "env", short = 'e', value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// A file of `NAME=VALUE` lines for the bench's environment (values never shown).
    /// Repeatable.
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,

    /// The bench's address, e.g. `https://{issue}.bench.example.com` (placeholders {issue},
    /// {branch}, {commit}, {port}; each a DNS-safe slug, host labels at most 63 characters).
    #[arg(long, env = "BENCHCTL_URL_TEMPLATE", value_name = "TEMPLATE")]
    pub url_template: Option<String>,

    /// Route benches through a reverse proxy instead of publishing ports (`traefik`: router
    /// labels on the host of --url-template; the bench joins --network).
    #[arg(long, env = "BENCHCTL_ROUTER", value_name = "PROXY", value_parser = ["traefik"])]
    pub router: Option<String>,

    /// The Docker network the proxy watches (with --router).
    #[arg(long, env = "BENCHCTL_NETWORK", value_name = "NAME")]
    pub network: Option<String>,

    /// Traefik entrypoint of the bench routers (e.g. `websecure`).
    #[arg(long, env = "BENCHCTL_TRAEFIK_ENTRYPOINT", value_name = "NAME")]
    pub traefik_entrypoint: Option<String>,

    /// Traefik certificate resolver (turns TLS on for the routers).
    #[arg(long, env = "BENCHCTL_TRAEFIK_CERT_RESOLVER", value_name = "NAME")]
    pub traefik_cert_resolver: Option<String>,

    /// Container port to publish (default: the image's single EXPOSEd port).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Host address the bench port is published on.
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    pub bind: String,

    /// Host name used in the bench address (default: a remote engine's host from DOCKER_HOST,
    /// else this machine's host name).
    #[arg(long, env = "BENCHCTL_PUBLIC_HOST", value_name = "HOST")]
    pub public_host: Option<String>,

    /// Seconds to wait for the bench to answer (default 60).
    #[arg(long, value_name = "SECONDS")]
    pub ready_timeout: Option<u64>,

    /// Memory limit of the bench (bytes, or with k/m/g suffix; default 512m).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// CPU limit of the bench (cores; default 1).
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<f64>,

    /// Maximum number of processes in the bench (default 256).
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,

    /// Where cached clones live (default: the user's cache directory, `~/.cache/benchctl`).
    #[arg(long, env = "BENCHCTL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Seconds to wait for another deploy or teardown of the same issue.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub lock_timeout: u64,

    /// Seconds after which the lock of a holder on another machine (or PID namespace) counts as
    /// abandoned; a dead holder on this machine is detected at once.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub lock_lease: u64,
}

impl LockArgs {
    fn options(&self) -> bench::LockOptions {
        bench::LockOptions {
            timeout: Duration::from_secs(self.lock_timeout),
            lease: Duration::from_secs(self.lock_lease.max(1)),
        }
    }
}

#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// Issue key, e.g. PROJ-42 (or give --branch; in CI the branch variable is used).
    pub issue: Option<String>,

    /// The issue branch whose bench to remove (its key is derived with --issue-pattern).
    #[arg(long, value_name = "BRANCH", conflicts_with = "issue")]
    pub branch: Option<String>,

    /// Regex that finds the issue key in the branch name.
    #[arg(long, env = "BENCHCTL_ISSUE_PATTERN", value_name = "REGEX")]
    pub issue_pattern: Option<String>,

    /// A branch without an issue key is not an error: exit 0 and do nothing (for CI jobs that
    /// run on every branch).
    #[arg(long)]
    pub skip_no_issue: bool,

    /// Leave the Tracker field as it is.
    #[arg(long)]
    pub keep_link: bool,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

pub use crate::settings::{parse_bytes, parse_memory as parse_size};

/// `--cache-dir` (or `BENCHCTL_CACHE_DIR`), else the user's cache directory.
fn cache_dir(flag: &Option<PathBuf>) -> PathBuf {
    flag.clone().unwrap_or_else(crate::git::default_cache_dir)
}

fn branch_from_ci() -> Option<String> {
    env::CI_BRANCH_VARS.iter().find_map(|v| env::var(v))
}

fn tracker_client(args: &TrackerArgs) -> Result<Option<TrackerClient>> {
    let files = TokenFiles {
        oauth: args.tracker_token_file.clone(),
        iam: args.tracker_iam_token_file.clone(),
    };
    Ok(
        config::tracker_config(&ProcessEnv, args.tracker_url.as_deref(), &files)?
            .map(TrackerClient::new),
    )
}

/// `--skip-no-issue`: a branch without an issue key is left alone, successfully.
fn skipped_no_issue(branch: &str, mode: OutputMode) -> i32 {
    if mode == OutputMode::Json {
        print_json(
            &serde_json::json!({ "skipped": true, "branch": branch, "reason": "no issue key" }),
        );
    } else {
        println!("branch `{branch}` carries no issue key; nothing to do (--skip-no-issue)");
    }
    exit::OK
}

/// The messengers configured in the environment (none is fine).
fn notifier() -> Result<Notifier> {
    Notifier::from_env(
        &ProcessEnv,
        Templates {
            dir: env::var(env::TEMPLATES_DIR).map(PathBuf::from),
        },
    )
}

/// Sends a notification; a messenger that fails is a warning, never an error.
async fn notify(notifier: &Notifier, msg: &Message, reporter: &SharedReporter) {
    for w in notifier.send(msg).await {
        reporter.report(crate::output::Event::Warn(w));
    }
}

/// The origin of a flag's value: the command line or its environment variable.
fn origin_of(m: &ArgMatches, id: &str, flag: &str, var: Option<&str>) -> Origin {
    match (m.value_source(id), var) {
        (Some(ValueSource::EnvVariable), Some(v)) => Origin::Env(v.to_string()),
        _ => Origin::Flag(flag.to_string()),
    }
}

/// What flags and the environment say about settings a config file may also hold.
fn explicit_layer(
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
fn local_layer(args: &BenchArgs) -> Result<Option<Layer>> {
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
fn branch_of(source: &SourceArgs) -> Result<String> {
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
fn deploy_request(
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
        (Some(_), Some(network)) => Some(bench::Router {
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

fn print_json(value: &impl serde::Serialize) {
    println!(
        "{}",
        redact(&serde_json::to_string_pretty(value).expect("serializable"))
    );
}

fn print_error(e: &Error, mode: OutputMode) {
    let msg = redact(&e.to_string());
    if mode == OutputMode::Json {
        print_json(&serde_json::json!({ "error": msg, "exit_code": e.exit_code() }));
    } else {
        eprintln!("error: {msg}");
    }
}

fn age(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

fn print_table(rows: &[BenchRecord]) {
    if rows.is_empty() {
        println!("no benches");
        return;
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.issue.clone(),
                r.branch.clone(),
                naming::short_commit(&r.commit).to_string(),
                r.url.clone().unwrap_or_else(|| "-".into()),
                r.state.clone().unwrap_or_default(),
                age(r.age_seconds),
            ]
        })
        .collect();
    let header = ["ISSUE", "BRANCH", "COMMIT", "ADDRESS", "STATE", "AGE"];
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(header.to_vec()));
    for row in &table {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}

async fn cmd_deploy(
    engine_args: &EngineArgs,
    args: &DeployArgs,
    m: &ArgMatches,
    mode: OutputMode,
    reporter: SharedReporter,
) -> Result<i32> {
    let resolved = deploy_request(
        &args.source,
        &args.bench,
        &args.tracker,
        !args.no_link,
        args.force,
        m,
        &reporter,
    );
    let (req, _) = match resolved {
        Err(Error::NoIssueKey { branch, .. }) if args.skip_no_issue => {
            return Ok(skipped_no_issue(&branch, mode));
        }
        other => other?,
    };
    crate::settings::ensure_buildable(&req)?;
    let tracker = if req.link {
        tracker_client(&args.tracker)?
    } else {
        None
    };
    let notifier = notifier()?;
    let engine = engine_args
        .pushing_backend(args.bench.config.as_deref())?
        .connect()
        .await?;
    let engine = engine.as_ref();
    let result = tokio::select! {
        r = bench::deploy(&req, engine, tracker.as_ref(), &reporter, args.lock.options()) => r,
        (signal, code) = crate::signal::interrupted() => {
            let cleanup = bench::recover_interrupted(&req, engine).await;
            return Err(Error::Interrupted { signal: signal.to_string(), cleanup, code });
        }
    };
    let message = match &result {
        Ok(o) if o.action == bench::Action::Deployed => Some(Message::Up {
            issue: req.issue.clone(),
            url: o.bench.url.clone().unwrap_or_default(),
            branch: req.branch.clone(),
            commit: o.bench.commit.clone(),
        }),
        Err(e) if e.exit_code() == exit::FAILURE => Some(Message::Failed {
            issue: req.issue.clone(),
            branch: req.branch.clone(),
            reason: redact(&e.to_string()),
        }),
        _ => None,
    };
    if let Some(m) = message {
        notify(&notifier, &m, &reporter).await;
    }
    let outcome = result?;
    drop(reporter);
    let b = &outcome.bench;
    let url = b.url.clone().unwrap_or_default();
    if mode == OutputMode::Json {
        let mut v = serde_json::to_value(b).expect("serializable");
        v["action"] = serde_json::to_value(outcome.action).expect("serializable");
        if let Some(e) = &outcome.link_error {
            v["link_error"] = serde_json::Value::String(e.clone());
        }
        print_json(&v);
    } else {
        let what = match outcome.action {
            bench::Action::Deployed => "is up at",
            bench::Action::Unchanged => "is unchanged at",
            bench::Action::Skipped => "keeps its newer bench at",
        };
        println!(
            "{} {what} {url} (branch {}, commit {})",
            b.issue,
            b.branch,
            naming::short_commit(&b.commit)
        );
        match (&outcome.link_skipped, outcome.action) {
            (Some(why), bench::Action::Skipped) => println!("{why}"),
            (Some(why), _) => println!("not linked in the Tracker: {why}"),
            _ => {}
        }
        if let Some(e) = &outcome.link_error {
            eprintln!(
                "error: the bench is up but not linked: {}\nafter fixing it, deploy again (nothing is rebuilt needlessly) or set the field by hand",
                redact(e)
            );
        }
    }
    Ok(if outcome.link_error.is_some() {
        exit::NOT_LINKED
    } else {
        exit::OK
    })
}

async fn cmd_list(engine_args: &EngineArgs, mode: OutputMode) -> Result<i32> {
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let rows = bench::list(engine).await?;
    if mode == OutputMode::Json {
        print_json(&rows);
    } else {
        print_table(&rows);
    }
    Ok(exit::OK)
}

async fn cmd_teardown(
    engine_args: &EngineArgs,
    args: &TeardownArgs,
    mode: OutputMode,
    reporter: SharedReporter,
) -> Result<i32> {
    let issue = match (&args.issue, args.branch.clone().or_else(branch_from_ci)) {
        (Some(k), _) => naming::normalize_issue_key(k)?,
        (None, Some(branch)) => {
            let pattern = args
                .issue_pattern
                .as_deref()
                .unwrap_or(DEFAULT_ISSUE_PATTERN);
            match naming::issue_key_from_branch(&branch, pattern) {
                Ok(k) => k,
                Err(Error::NoIssueKey { .. }) if args.skip_no_issue => {
                    return Ok(skipped_no_issue(&branch, mode));
                }
                Err(e) => return Err(e),
            }
        }
        (None, None) => {
            return Err(Error::usage(
                "name the bench: `benchctl teardown PROJ-42`, or --branch <branch> (in CI the \
                 branch variable is used)",
            ))
        }
    };
    let field = config::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?;
    let tracker = if args.keep_link {
        None
    } else {
        tracker_client(&args.tracker)?
    };
    let notifier = notifier()?;
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let out = bench::teardown(
        &issue,
        engine,
        tracker.as_ref(),
        &field,
        !args.keep_link,
        &reporter,
        args.lock.options(),
    )
    .await?;
    if !out.removed_containers.is_empty() {
        let m = Message::Removed {
            issue: issue.clone(),
            reason: "benchctl teardown".into(),
        };
        notify(&notifier, &m, &reporter).await;
    }
    drop(reporter);
    if mode == OutputMode::Json {
        print_json(&out);
    } else {
        if out.removed_containers.is_empty() {
            println!("{issue} has no bench; nothing to remove");
        } else {
            println!(
                "{issue}: removed {} container(s) and {} image(s)",
                out.removed_containers.len(),
                out.removed_images
            );
        }
        if out.link_cleared {
            println!("{issue}: field `{field}` cleared");
        }
    }
    if let Some(e) = &out.link_error {
        if mode != OutputMode::Json {
            eprintln!("error: {}", redact(e));
        }
        return Ok(exit::FAILURE);
    }
    Ok(exit::OK)
}

async fn cmd_link(
    engine_args: &EngineArgs,
    args: &LinkArgs,
    mode: OutputMode,
    reporter: SharedReporter,
) -> Result<i32> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let field = config::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?;
    let tracker = tracker_client(&args.tracker)?.ok_or_else(|| {
        Error::usage(format!(
            "no Tracker is configured; set {} (or {}) and {} (or {})",
            env::TRACKER_TOKEN,
            env::TRACKER_IAM_TOKEN,
            env::TRACKER_ORG_ID,
            env::TRACKER_CLOUD_ORG_ID
        ))
    })?;
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let result = bench::link(&issue, engine, &tracker, &field, &reporter).await?;
    drop(reporter);
    let (url, error) = match &result {
        Ok(url) => (Some(url.clone()), None),
        Err(e) => (None, Some(e.clone())),
    };
    if mode == OutputMode::Json {
        print_json(&serde_json::json!({
            "issue": issue, "field": field, "url": url,
            "linked": error.is_none(), "link_error": error,
        }));
    } else if let Some(url) = &url {
        println!("{issue}: field `{field}` = {url}");
    } else if let Some(e) = &error {
        eprintln!("error: {}", redact(e));
    }
    Ok(if error.is_some() {
        exit::NOT_LINKED
    } else {
        exit::OK
    })
}

async fn cmd_status(engine_args: &EngineArgs, args: &IssueArg, mode: OutputMode) -> Result<i32> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let st = bench::status(engine, &issue).await?;
    let code = if st.bench.is_some() {
        exit::OK
    } else {
        exit::FAILURE
    };
    if mode == OutputMode::Json {
        print_json(&st);
        return Ok(code);
    }
    match &st.bench {
        None => println!("{issue} has no bench"),
        Some(b) => {
            println!("issue:    {}", b.issue);
            println!("state:    {}", b.state.clone().unwrap_or_default());
            println!("address:  {}", b.url.clone().unwrap_or_else(|| "-".into()));
            println!("branch:   {}", b.branch);
            println!("commit:   {}", b.commit);
            println!("image:    {}", b.image);
            println!("age:      {}", age(b.age_seconds));
        }
    }
    if let Some(last) = &st.last_deploy {
        let commit = if last.commit.is_empty() {
            String::new()
        } else {
            format!(" of {}", naming::short_commit(&last.commit))
        };
        println!(
            "last deploy: {}{commit} (branch {}) at {}",
            last.result,
            last.branch,
            crate::lock::utc(last.at)
        );
        if !last.message.is_empty() {
            println!("  {}", redact(&last.message).replace('\n', "\n  "));
        }
    }
    Ok(code)
}

async fn cmd_logs(engine_args: &EngineArgs, args: &LogsArgs) -> Result<i32> {
    use futures_util::StreamExt;
    use std::io::Write;
    let issue = naming::normalize_issue_key(&args.issue)?;
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let Some(bench) = bench::find_bench(engine, &issue).await? else {
        return Err(Error::usage(format!("{issue} has no bench")));
    };
    let mut stream = crate::runtime::Engine::logs(engine, &bench.id, args.follow, args.tail);
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
            break; // the reader went away (e.g. `| head`)
        }
    }
    Ok(exit::OK)
}

async fn cmd_gc(
    engine_args: &EngineArgs,
    args: &GcArgs,
    mode: OutputMode,
    reporter: SharedReporter,
) -> Result<i32> {
    let ttl = match &args.ttl {
        Some(t) => Some(crate::gc::parse_duration(t).ok_or_else(|| {
            Error::usage(format!("--ttl `{t}` is not a duration (e.g. 90m, 12h, 3d)"))
        })?),
        None => None,
    };
    let scope = match &args.scope {
        Some(s) => Some(crate::git::resolve_repo(Some(s))?.location),
        None => None,
    };
    let opts = crate::gc::GcOptions {
        dry_run: args.dry_run,
        ttl,
        closed_statuses: args.closed.closed_statuses.clone(),
        scope,
        field: config::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?,
        clear_link: !args.keep_link,
        cache_dir: cache_dir(&args.cache_dir),
        cache_max_age: crate::gc::parse_duration(&args.cache_max_age).ok_or_else(|| {
            Error::usage(format!(
                "--cache-max-age `{}` is not a duration (e.g. 12h, 14d)",
                args.cache_max_age
            ))
        })?,
    };
    let tracker = tracker_client(&args.tracker)?;
    let engine = engine_args.backend(None)?.connect().await?;
    let engine = engine.as_ref();
    let actions = crate::gc::gc(
        engine,
        tracker.as_ref(),
        &opts,
        &reporter,
        args.lock.options(),
    )
    .await?;
    drop(reporter);
    if mode == OutputMode::Json {
        print_json(&actions);
    } else if actions.is_empty() {
        println!("nothing to clean up");
    } else {
        let verb = if args.dry_run { "would " } else { "" };
        for a in &actions {
            println!("{verb}{} {}: {}", a.action, a.target, a.reason);
        }
    }
    Ok(exit::OK)
}

fn review_target(flag: &str) -> Option<String> {
    let t = flag.trim();
    (!t.is_empty() && t != "none").then(|| t.to_string())
}

/// Where `serve` keeps its queue: `--state-dir`, else `$XDG_STATE_HOME/benchctl`, else
/// `~/.local/state/benchctl`.
fn state_dir(flag: &Option<PathBuf>) -> PathBuf {
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
fn resolve_shown(
    args: &ConfigArgs,
    m: &ArgMatches,
    mode: OutputMode,
) -> Result<Option<(DeployRequest, crate::settings::Effective)>> {
    if args.source.branch.is_none() && branch_from_ci().is_none() {
        return Ok(None);
    }
    let reporter = mode.reporter();
    deploy_request(
        &args.source,
        &args.bench,
        &args.tracker,
        true,
        false,
        m,
        &reporter,
    )
    .map(Some)
}

async fn cmd_templates(args: &ConfigArgs, m: &ArgMatches, mode: OutputMode) -> Result<i32> {
    let dir = env::var(env::TEMPLATES_DIR).map(PathBuf::from);
    let list = crate::templates::list(dir.as_deref());
    let chosen = resolve_shown(args, m, mode)?.map(|(req, _)| req);
    if mode == OutputMode::Json {
        print_json(&serde_json::json!({
            "templates": list,
            "branch": chosen.as_ref().map(|r| &r.branch),
            "chosen": chosen.as_ref().and_then(|r| r.template.as_ref()),
        }));
        return Ok(exit::OK);
    }
    let w = list.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<w$}  {:<34}  {:<40}  SOURCE",
        "NAME", "CHOSEN BY", "FROM"
    );
    for t in &list {
        let by = if t.chosen_by.is_empty() {
            "--template only".to_string()
        } else {
            t.chosen_by.join(" or ")
        };
        println!(
            "{:<w$}  {:<34}  {:<40}  {}",
            t.name,
            by,
            t.base_images.join(", "),
            t.source
        );
    }
    if let Some(req) = chosen {
        match &req.template {
            Some(t) => println!(
                "\nbranch `{}` is built with template `{}`: {}",
                req.branch, t.name, t.reason
            ),
            None => println!(
                "\nbranch `{}` is built with its own `{}`",
                req.branch, req.dockerfile
            ),
        }
    }
    Ok(exit::OK)
}

async fn cmd_config(
    engine_args: &EngineArgs,
    args: &ConfigArgs,
    m: &ArgMatches,
    mode: OutputMode,
) -> Result<i32> {
    use crate::settings::Row;
    let mut head: Vec<Row> = Vec::new();
    let row = |key: &str, value: String, origin: &str| Row {
        key: key.into(),
        value,
        origin: origin.into(),
    };
    let effective = if let Some((req, effective)) = resolve_shown(args, m, mode)? {
        let branch_origin = if args.source.branch.is_some() {
            "argument"
        } else {
            "CI variable"
        };
        head.push(row("branch", req.branch.clone(), branch_origin));
        head.push(row(
            "repository",
            req.repo.location.clone(),
            if args.source.repo.is_some() {
                "flag --repo"
            } else {
                "current directory"
            },
        ));
        head.push(row(
            "issue",
            req.issue.clone(),
            if args.source.issue.is_some() {
                "flag --issue"
            } else {
                "issue-pattern on the branch"
            },
        ));
        if let Some(t) = &req.template {
            head.push(row("template (chosen)", t.name.clone(), &t.reason));
        }
        effective
    } else {
        let explicit = explicit_layer(
            &args.bench,
            args.tracker.field.as_deref(),
            args.source.issue_pattern.as_deref(),
            m,
        )?;
        let local = local_layer(&args.bench)?;
        let mut layers = vec![&explicit];
        layers.extend(local.as_ref());
        let effective = crate::settings::merge(&layers);
        crate::settings::apply(&base_request(&args.bench, true, false)?, &effective)?;
        head.push(row(
            "branch",
            "-".into(),
            "none given: the branch's benchctl.toml is not read",
        ));
        effective
    };
    let mut rows = head;
    rows.extend(crate::settings::rows(&effective));
    let public_host_origin = if args.bench.public_host.is_some() {
        origin_of(m, "public_host", "--public-host", Some(env::PUBLIC_HOST)).to_string()
    } else if config::remote_engine_host(&ProcessEnv).is_some() {
        "DOCKER_HOST (the remote engine's host)".into()
    } else {
        "default (this machine's host name)".into()
    };
    rows.push(row(
        "public-host",
        config::public_host(args.bench.public_host.as_deref(), &ProcessEnv),
        &public_host_origin,
    ));
    rows.push(row(
        "bind",
        args.bench.bind.clone(),
        "flag --bind or default",
    ));
    rows.extend(
        engine_args
            .rows(args.bench.config.as_deref(), m)?
            .into_iter()
            .map(|(k, v, o)| row(k, v, &o)),
    );
    rows.push(row(
        "cache-dir",
        cache_dir(&args.bench.cache_dir).display().to_string(),
        if args.bench.cache_dir.is_some() {
            "flag --cache-dir or BENCHCTL_CACHE_DIR"
        } else {
            "default"
        },
    ));
    match tracker_client(&args.tracker) {
        Ok(Some(t)) => rows.push(row(
            "tracker",
            t.base_url().to_string(),
            "token and organization set (token not shown)",
        )),
        Ok(None) => rows.push(row(
            "tracker",
            "-".into(),
            "none configured: benches are not linked",
        )),
        Err(e) => rows.push(row("tracker", "-".into(), &format!("error: {e}"))),
    }
    if mode == OutputMode::Json {
        print_json(&rows);
        return Ok(exit::OK);
    }
    let w0 = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for r in &rows {
        println!(
            "{}",
            redact(&format!("{:<w0$}  {:<w1$}  {}", r.key, r.value, r.origin)).trim_end()
        );
    }
    Ok(exit::OK)
}

async fn cmd_serve(engine_args: &EngineArgs, args: &ServeArgs, m: &ArgMatches) -> Result<i32> {
    use crate::server::{ReviewTargets, ServeConfig};
    let mut repos = std::collections::HashMap::new();
    for r in &args.repos {
        let (name, url) = r.split_once('=').ok_or_else(|| {
            Error::usage(format!(
                "--repo `{r}` is not NAME=URL (e.g. acme/shop=git@github.com:acme/shop.git)"
            ))
        })?;
        if name.trim().is_empty() || url.trim().is_empty() {
            return Err(Error::usage(format!("--repo `{r}` needs a name and a URL")));
        }
        crate::git::resolve_repo(Some(url.trim()))?;
        repos.insert(name.trim().to_string(), url.trim().to_string());
    }
    let issue_pattern = args
        .issue_pattern
        .clone()
        .unwrap_or_else(|| DEFAULT_ISSUE_PATTERN.to_string());
    let templates = Templates {
        dir: args.templates_dir.clone(),
    };
    templates.check()?;
    let max_body = parse_bytes(&args.max_body)?;
    if max_body < 1024 {
        return Err(Error::usage("--max-body must be at least 1k"));
    }
    let explicit = explicit_layer(
        &args.bench,
        args.tracker.field.as_deref(),
        args.issue_pattern.as_deref(),
        m,
    )?;
    let local = local_layer(&args.bench)?;
    // what the deploys use when no branch's config says otherwise (checked now, at start)
    let mut layers = vec![&explicit];
    layers.extend(local.as_ref());
    let mut deploy = base_request(&args.bench, !args.no_link, false)?;
    deploy = crate::settings::apply(&deploy, &crate::settings::merge(&layers))?;
    let cfg = ServeConfig {
        listen: args.listen,
        secrets: crate::webhook::Secrets::from_env(&ProcessEnv)?,
        state_dir: state_dir(&args.state_dir),
        max_body: max_body as usize,
        max_parallel: args.max_parallel.max(1),
        max_attempts: args.max_attempts.max(1),
        retry_base: Duration::from_secs(args.retry_delay),
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        repos,
        issue_pattern,
        review_targets: ReviewTargets {
            approved: review_target(&args.on_approved),
            changes_requested: review_target(&args.on_changes_requested),
            rejected: review_target(&args.on_rejected),
        },
        review_comment: args.review_comment,
        closed_statuses: args.closed.closed_statuses.clone(),
        deploy,
        explicit,
        local,
        lock: args.lock.options(),
        templates: templates.clone(),
        backend: engine_args.pushing_backend(args.bench.config.as_deref())?,
    };
    let tracker = tracker_client(&args.tracker)?;
    let notifier = Notifier::from_env(&ProcessEnv, templates)?;
    if tracker.is_none() {
        crate::server::log(
            "warning: no Tracker configured: reviews and closes cannot be handled, benches are not linked",
        );
    }
    let messengers = notifier.describe();
    if !messengers.is_empty() {
        crate::server::log(&format!("notifications to {}", messengers.join(", ")));
    }
    crate::server::serve(cfg, tracker, notifier).await?;
    Ok(exit::OK)
}

async fn cmd_tracker_init(args: &TrackerInitArgs, mode: OutputMode) -> Result<i32> {
    let tracker = tracker_client(&args.tracker)?.ok_or_else(|| {
        Error::usage(
            "tracker init needs the Tracker: set BENCHCTL_TRACKER_TOKEN (or BENCHCTL_TRACKER_IAM_TOKEN) \
             and BENCHCTL_TRACKER_ORG_ID (or BENCHCTL_TRACKER_CLOUD_ORG_ID)",
        )
    })?;
    let secret = config::secret_from_env(&ProcessEnv, env::TRACKER_HOOK_SECRET)?;
    let opts = crate::tracker::InitOptions {
        queue: args.queue.clone(),
        field_key: args.field_key.clone(),
        field_name: args.field_name.clone(),
        hook_url: args.hook_url.clone(),
        closed_status: args.closed_status.clone(),
        apply: args.apply,
    };
    let out = crate::tracker::init(&tracker, &opts, secret.as_ref()).await?;
    if mode == OutputMode::Json {
        print_json(&out);
        return Ok(exit::OK);
    }
    println!(
        "field: {} ({})",
        out.field_key,
        if out.field_created {
            "created"
        } else {
            "already there"
        }
    );
    println!(
        "  use it with: export BENCHCTL_BENCH_FIELD='{}'",
        out.field_key
    );
    match (&out.trigger_state[..], &out.trigger) {
        ("created", _) => println!("trigger: \"{}\" created", out.trigger_name),
        ("exists", _) => println!("trigger: \"{}\" already there", out.trigger_name),
        (_, Some(body)) => {
            println!(
                "trigger: not created (pass --apply to create it); it would be, with the secret of {} in place of <secret>:",
                env::TRACKER_HOOK_SECRET
            );
            println!(
                "{}",
                redact(&serde_json::to_string_pretty(body).expect("serializable"))
            );
        }
        _ => println!("trigger: pass --hook-url <https://.../hooks/tracker> to create or print it"),
    }
    Ok(exit::OK)
}

/// Parses `args` and runs the command; returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let color = if crate::output::no_color() {
        clap::ColorChoice::Never
    } else {
        clap::ColorChoice::Auto
    };
    let parsed = Cli::command()
        .color(color)
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let mode = OutputMode::from_process(cli.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    // the subcommand's own matches tell where each value came from (flag or environment)
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Deploy(a) => cmd_deploy(&cli.engine, a, &sub, mode, mode.reporter()).await,
            Command::Config(a) => cmd_config(&cli.engine, a, &sub, mode).await,
            Command::Templates(a) => cmd_templates(a, &sub, mode).await,
            Command::Completions(a) => {
                let shell = match a.shell {
                    CompletionShell::Bash => clap_complete::Shell::Bash,
                    CompletionShell::Zsh => clap_complete::Shell::Zsh,
                    CompletionShell::Fish => clap_complete::Shell::Fish,
                };
                let mut out = Vec::new();
                clap_complete::generate(shell, &mut Cli::command(), "benchctl", &mut out);
                use std::io::Write;
                let _ = std::io::stdout().write_all(&out);
                Ok(exit::OK)
            }
            Command::Man => {
                let mut out = Vec::new();
                clap_mangen::Man::new(Cli::command())
                    .render(&mut out)
                    .map_err(|e| Error::usage(format!("cannot render the man page: {e}")))?;
                use std::io::Write;
                let _ = std::io::stdout().write_all(&out);
                Ok(exit::OK)
            }
            Command::List => cmd_list(&cli.engine, mode).await,
            Command::Teardown(a) => cmd_teardown(&cli.engine, a, mode, mode.reporter()).await,
            Command::Link(a) => cmd_link(&cli.engine, a, mode, mode.reporter()).await,
            Command::Status(a) => cmd_status(&cli.engine, a, mode).await,
            Command::Logs(a) => cmd_logs(&cli.engine, a).await,
            Command::Gc(a) => cmd_gc(&cli.engine, a, mode, mode.reporter()).await,
            Command::Serve(a) => cmd_serve(&cli.engine, a, &sub).await,
            Command::Tracker(TrackerCommand::Init(a)) => cmd_tracker_init(a, mode).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            print_error(&e, mode);
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GB").unwrap(), 1 << 30);
        assert!(parse_size("1k").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
