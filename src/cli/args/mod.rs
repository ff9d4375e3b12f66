//! The command line as clap sees it: every command, flag and help text, and nothing else
//! (turning them into settings is `resolve.rs`, running them `commands/`, output `print/`).

use crate::settings::keys;
use crate::settings::values::seconds;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BENCHCTL_COMMIT"),
    ")"
);

mod serve;
pub use serve::ServeArgs;

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
    List(ListArgs),
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
    /// What each bench holds on the engine's disk (its images and what its containers
    /// wrote), and the room left there.
    Disk,
    /// Keep an issue's bench: never expired by --ttl (by `gc` or serve's clean-up).
    Pin(PinArgs),
    /// Let an issue's pinned bench expire again.
    Unpin(UnpinArgs),
    /// Put an issue's bench to sleep: stopped in place (its data, address and link stay).
    Sleep(SleepArgs),
    /// Wake an issue's sleeping bench and wait until it answers.
    Wake(WakeArgs),
    /// Run the webhook service: pull request reviews move issues, pushes redeploy benches,
    /// closed issues lose their bench.
    Serve(Box<ServeArgs>),
    /// Set up the Tracker for benchctl.
    #[command(subcommand)]
    Tracker(TrackerCommand),
    /// List the Dockerfile templates for branches without a Dockerfile; with a branch, say
    /// which one its deploy would use and why.
    Templates(ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish): e.g.
    /// `benchctl completions bash > /etc/bash_completion.d/benchctl`.
    Completions(CompletionsArgs),
    /// Close or open the benches' egress on this host (as root): `close` adds benchctl's
    /// iptables rules (a bench reaches no listener of the host and no link-local address),
    /// `open` takes them out, `status` says which holds (README: Security model, Network).
    Egress(EgressArgs),
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
    #[arg(long, global = true, env = keys::BACKEND.env, value_name = keys::BACKEND.value_name,
          help = keys::BACKEND.help, help_heading = "Where benches run",
          value_parser = clap::builder::PossibleValuesParser::new(keys::BACKEND.choices()))]
    pub backend: Option<String>,

    #[arg(id = "publish-mode", long = "publish-mode", global = true,
          env = keys::PUBLISH_MODE.env, value_name = keys::PUBLISH_MODE.value_name,
          help = keys::PUBLISH_MODE.help, help_heading = "Where benches run",
          value_parser = clap::builder::PossibleValuesParser::new(keys::PUBLISH_MODE.choices()))]
    pub publish_mode: Option<String>,

    #[arg(long, global = true, env = keys::REGISTRY.env, value_name = keys::REGISTRY.value_name,
          help = keys::REGISTRY.help, help_heading = "Where benches run")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct EgressArgs {
    pub action: EgressAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EgressAction {
    Close,
    Open,
    Status,
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
    #[arg(long, default_value = keys::FIELD.default, value_name = "KEY")]
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
pub struct GcArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,

    /// Seconds a removed bench's teardown hook may run at most, whatever it was deployed with.
    #[arg(long, env = keys::MAX_HOOK_TIMEOUT.env, default_value_t = 600, value_name = "SECONDS",
          value_parser = seconds())]
    pub max_hook_timeout: u64,

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

    /// Also remove benchctl's share of the build cache: the layers of builds that were killed
    /// (marked by benchctl, tagged by nothing, made before every deploy now running).
    #[arg(long)]
    pub build_cache: bool,

    /// An issue carrying this Tracker tag keeps its bench from expiring (as `benchctl pin`).
    #[arg(long, env = "BENCHCTL_PIN_TAG", value_name = "TAG")]
    pub pin_tag: Option<String>,

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
pub struct ListArgs {
    /// With --json: an object `{benches, totals}` whose totals count the running, sleeping,
    /// other and pinned benches and the memory each group reserves when it runs.
    #[arg(long)]
    pub totals: bool,
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,

    /// Until when: a date (`2026-12-31`, to the end of that day, UTC) or a duration from now
    /// (`7d`); without it, until `unpin`.
    #[arg(long, value_name = "DATE|DURATION")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnpinArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,
}

#[derive(Debug, Args)]
pub struct SleepArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,

    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct WakeArgs {
    /// Issue key, e.g. PROJ-42.
    pub issue: String,

    /// Seconds the woken bench may take to answer.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = seconds())]
    pub ready_timeout: u64,

    #[arg(long, env = keys::MAX_RUNNING.env, value_name = keys::MAX_RUNNING.value_name,
          help = keys::MAX_RUNNING.help)]
    pub max_running: Option<usize>,

    #[arg(long, env = keys::MAX_MEMORY_TOTAL.env, value_name = keys::MAX_MEMORY_TOTAL.value_name,
          help = keys::MAX_MEMORY_TOTAL.help)]
    pub max_memory_total: Option<String>,

    #[command(flatten)]
    pub lock: LockArgs,

    /// Where the address is written again when it changed (a new published port).
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

/// Where commit statuses go (the repository's code host), for self-hosted instances and
/// mirrors; tokens come from the environment only.
#[derive(Debug, Args, Clone, Default)]
pub struct CodeHostArgs {
    /// The code host of the repository when its URL does not say (self-hosted):
    /// `github`, `gitlab`, `bitbucket-cloud` or `bitbucket-dc`.
    #[arg(long, env = crate::env::CODE_HOST, value_name = "HOST",
          value_parser = ["github", "gitlab", "bitbucket-cloud", "bitbucket-dc"])]
    pub code_host: Option<String>,

    /// The code host's API base URL (`https://github.example.com/api/v3`,
    /// `https://gitlab.example.com/api/v4`, `https://bitbucket.example.com`).
    #[arg(long, env = crate::env::CODE_HOST_API, value_name = "URL")]
    pub code_host_api: Option<String>,

    /// The repository's path on the code host (`owner/repo`, `group/sub/project`,
    /// `PROJECT/repo`) when the URL benchctl clones from does not say it (a mirror).
    #[arg(long, env = crate::env::CODE_HOST_REPO, value_name = "PATH")]
    pub code_host_repo: Option<String>,

    /// Keep one comment on the branch's open pull request (merge request) current: the
    /// bench's address, commit, state, time and last error, edited in place on every deploy.
    #[arg(long, env = crate::env::PR_COMMENT)]
    pub pr_comment: bool,

    /// Where serve's dashboard is reachable from outside (`https://bench.example.com`):
    /// statuses link to its page of the bench, where a failure's reason can be read, and the
    /// page Traefik shows for a sleeping bench (serve's `/asleep`) to its wake button there.
    #[arg(long, env = crate::env::DASHBOARD_URL, value_name = "URL")]
    pub dashboard_url: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct TrackerArgs {
    #[arg(long, env = keys::FIELD.env, value_name = keys::FIELD.value_name,
          help = keys::FIELD.help)]
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

    #[command(flatten)]
    pub code_host: CodeHostArgs,
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

    #[arg(id = "issue-pattern", long = "issue-pattern", env = keys::ISSUE_PATTERN.env,
          value_name = keys::ISSUE_PATTERN.value_name, help = keys::ISSUE_PATTERN.help)]
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
    /// The settings a config file may hold too (`crate::settings::keys`).
    #[command(flatten)]
    pub keys: crate::settings::flags::KeyArgs,

    /// A local config file (same format as the repository's `benchctl.toml`).
    #[arg(long, env = "BENCHCTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// A file of `NAME=VALUE` lines for the bench's environment (values never shown).
    /// Repeatable.
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,

    /// Seconds a build may run before it is stopped (the running bench stays as it is).
    #[arg(long, env = "BENCHCTL_BUILD_TIMEOUT", default_value_t = 1200, value_name = "SECONDS",
          value_parser = seconds())]
    pub build_timeout: u64,

    /// Which builder builds images: `auto` (BuildKit where the engine has it and the host
    /// bounds its steps, else classic), `classic` (its steps run under the bench's memory and
    /// CPU limits), or `buildkit` (the engine's BuildKit: `RUN --mount`, skipped stages; its
    /// steps are bounded only by the host). The operator's setting only.
    #[arg(long, env = "BENCHCTL_BUILDER", default_value = "auto", value_name = "BUILDER",
          value_parser = ["classic", "buildkit", "auto"])]
    pub builder: String,

    /// The network of build steps: `default` (the engine's default bridge: `RUN` steps reach
    /// package registries, and no link-local address while egress is closed) or `none` (no
    /// network at all: a `RUN` step that downloads fails). The operator's setting only.
    #[arg(long, env = "BENCHCTL_BUILD_NETWORK", default_value = "default", value_name = "NETWORK",
          value_parser = ["default", "none"])]
    pub build_network: String,

    /// A build is not started while the engine's data disk has less than this free (e.g.
    /// 1g; `0` turns the check off). Read where benchctl runs beside the engine. The
    /// operator's setting only.
    #[arg(long, env = "BENCHCTL_MIN_FREE_DISK", default_value = "1g", value_name = "SIZE",
          value_parser = min_free_disk)]
    pub min_free_disk: u64,

    /// Images a branch may name (`FROM`, `COPY --from`, `RUN --mount=from=`, `# syntax=`, a
    /// Compose `image:`): comma-separated patterns over normalized names, `*` any run of
    /// characters (`docker.io/library/*` is Docker Hub's official images; `*` allows all).
    /// benchctl's own images (`benchctl/...`) are never allowed. The operator's setting only.
    #[arg(long, env = "BENCHCTL_ALLOW_IMAGES", default_value = crate::build::allow::DEFAULT,
          value_name = "PATTERNS")]
    pub allow_images: String,

    /// What benches and builds may reach: `closed` (a bench reaches no other bench, no
    /// listener of the engine's host and no link-local address such as the cloud metadata
    /// service; a build no link-local address: benchctl keeps iptables rules as root on the
    /// engine's host, README: Security model, Network) or `open` (the engine's defaults).
    /// The operator's setting only.
    #[arg(long, env = "BENCHCTL_EGRESS", default_value = "closed", value_name = "EGRESS",
          value_parser = ["closed", "open"])]
    pub egress: String,

    /// Which deploys add a comment to the issue: `failures` (a failed deploy, with the
    /// reason, and the success that follows it), `all` (also every new bench) or `off`.
    #[arg(long, env = "BENCHCTL_TRACKER_COMMENT", default_value = "failures",
          value_name = "WHICH", value_parser = ["failures", "all", "off"])]
    pub tracker_comment: String,

    /// A build secret for `RUN --mount=type=secret,id=ID` (BuildKit only): `id=ID,env=VARIABLE`
    /// (benchctl's environment variable) or `id=ID,src=PATH` (a file). The value reaches the
    /// engine's BuildKit and nothing else. Repeatable; the operator's setting only.
    #[arg(
        long = "build-secret",
        env = "BENCHCTL_BUILD_SECRETS",
        value_delimiter = ';',
        value_name = "id=ID,env=VAR|src=PATH"
    )]
    pub build_secrets: Vec<String>,

    /// A kernel capability benches get besides the default set (README: Security model),
    /// e.g. `NET_RAW`. Repeatable; the operator's setting only.
    #[arg(
        long = "cap-add",
        env = "BENCHCTL_CAP_ADD",
        value_delimiter = ',',
        value_name = "CAP"
    )]
    pub cap_add: Vec<String>,

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

    /// How long a redeploy keeps the old container after the new one answers, so that Traefik
    /// routes to the new one before the old one goes: longer than Traefik's
    /// providersThrottleDuration (2s by default); 0 removes it at once (with --router).
    #[arg(
        long,
        env = "BENCHCTL_TRAEFIK_DRAIN",
        default_value = "3s",
        value_name = "DURATION"
    )]
    pub traefik_drain: String,

    /// Host address the bench port is published on.
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    pub bind: String,

    /// Host name used in the bench address (default: a remote engine's host from DOCKER_HOST,
    /// else this machine's host name).
    #[arg(long, env = "BENCHCTL_PUBLIC_HOST", value_name = "HOST")]
    pub public_host: Option<String>,

    /// Where cached clones live (default: the user's cache directory, `~/.cache/benchctl`).
    #[arg(long, env = "BENCHCTL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Seconds to wait for another deploy or teardown of the same issue.
    #[arg(long, default_value_t = 600, value_name = "SECONDS", value_parser = seconds())]
    pub lock_timeout: u64,

    /// Seconds after which the lock of a holder on another machine (or PID namespace) counts as
    /// abandoned; a dead holder on this machine is detected at once.
    #[arg(long, default_value_t = 900, value_name = "SECONDS", value_parser = seconds())]
    pub lock_lease: u64,
}

#[derive(Debug, Args)]
pub struct TeardownArgs {
    /// Issue key, e.g. PROJ-42 (or give --branch; in CI the branch variable is used).
    pub issue: Option<String>,

    /// The issue branch whose bench to remove (its key is derived with --issue-pattern).
    #[arg(long, value_name = "BRANCH", conflicts_with = "issue")]
    pub branch: Option<String>,

    #[arg(id = "issue-pattern", long = "issue-pattern", env = keys::ISSUE_PATTERN.env,
          value_name = keys::ISSUE_PATTERN.value_name, help = keys::ISSUE_PATTERN.help)]
    pub issue_pattern: Option<String>,

    /// A branch without an issue key is not an error: exit 0 and do nothing (for CI jobs that
    /// run on every branch).
    #[arg(long)]
    pub skip_no_issue: bool,

    /// Leave the Tracker field as it is.
    #[arg(long)]
    pub keep_link: bool,

    /// Leave a multi-service bench's named volumes (its data) for the next deploy.
    #[arg(long)]
    pub keep_volumes: bool,

    /// Seconds the bench's teardown hook may run at most, whatever it was deployed with.
    #[arg(long, env = keys::MAX_HOOK_TIMEOUT.env, default_value_t = 600, value_name = "SECONDS",
          value_parser = seconds())]
    pub max_hook_timeout: u64,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,

    #[command(flatten)]
    pub code_host: CodeHostArgs,
}

/// `--min-free-disk`: a size such as `1g`, or `0`.
fn min_free_disk(s: &str) -> Result<u64, String> {
    crate::settings::values::parse_bytes(s)
        .map(|b| b.max(0) as u64)
        .map_err(|e| e.to_string())
}
