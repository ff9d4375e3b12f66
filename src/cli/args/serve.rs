//! `benchctl serve`'s arguments: where it listens, its webhooks and jobs, the review flow,
//! the dashboard and the clean-up (apart from the commands' shared argument groups).

use super::*;

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

    #[arg(id = "issue-pattern", long = "issue-pattern", env = keys::ISSUE_PATTERN.env,
          value_name = keys::ISSUE_PATTERN.value_name, help = keys::ISSUE_PATTERN.help)]
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

    /// GitHub `author_association`s whose reviews (and closes of their own pull requests) move
    /// issues; others are acknowledged and ignored.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "OWNER,MEMBER,COLLABORATOR",
        value_name = "ASSOCIATIONS"
    )]
    pub review_associations: Vec<String>,

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
    #[arg(long, default_value_t = 5, value_name = "SECONDS", value_parser = seconds())]
    pub retry_delay: u64,

    /// Seconds running jobs get to finish on SIGTERM before they are abandoned (abandoned jobs
    /// run again on the next start).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = seconds())]
    pub shutdown_grace: u64,

    /// Seconds one job may run (a deploy's lock wait, build and readiness together); past it
    /// the job is stopped, cleaned up and failed.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS", value_parser = seconds())]
    pub job_timeout: u64,

    /// Seconds a client has to send a request's headers (an idle connection is closed too).
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = seconds())]
    pub header_timeout: u64,

    /// Seconds a client has to send a delivery's body (408 past it).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = seconds())]
    pub body_timeout: u64,

    /// Connections open at once at most; more are closed at once (the sender retries).
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,

    /// Sleeping benches the front door may wake a minute, for all clients together (host
    /// names are guessable: a loop over them would wake every bench); past it, 429.
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub wake_rate: u32,

    /// Sleeping benches one client (an IPv4 address, an IPv6 /64) may wake through the front
    /// door a minute; past it, 429 with `Retry-After`. A request joining a wake under way is
    /// free, and the dashboard's button is not limited.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub wake_rate_client: u32,

    /// Seconds an upgraded connection through the front door (a WebSocket) may pass no byte
    /// either way before it is closed.
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = seconds())]
    pub tunnel_idle_timeout: u64,

    /// Deploy without touching the Tracker field.
    #[arg(long)]
    pub no_link: bool,

    /// Accept webhook secrets shorter than 16 bytes (an empty one is never accepted).
    #[arg(long)]
    pub allow_weak_secrets: bool,

    /// Serve the bench dashboard at `/`: behind HTTP Basic auth (BENCHCTL_DASHBOARD_PASSWORD,
    /// user BENCHCTL_DASHBOARD_USER or `benchctl`), and/or on --dashboard-listen.
    #[arg(long)]
    pub dashboard: bool,

    /// How often serve cleans up as `benchctl gc` does (closed issues' benches, benches past
    /// --ttl, leftovers, abandoned locks, unused images), as a queued job; `0` turns it off.
    #[arg(
        long,
        env = "BENCHCTL_GC_INTERVAL",
        default_value = "10m",
        value_name = "DURATION"
    )]
    pub gc_interval: String,

    /// serve's clean-up also removes benches not redeployed for longer than this (e.g. 7d).
    #[arg(long, env = "BENCHCTL_TTL", value_name = "DURATION")]
    pub ttl: Option<String>,

    /// An issue carrying this Tracker tag keeps its bench from expiring (as `benchctl pin`).
    #[arg(long, env = "BENCHCTL_PIN_TAG", value_name = "TAG")]
    pub pin_tag: Option<String>,

    /// Put benches to sleep (stopped in place) after this long without a request through the
    /// proxy or inbound connection (e.g. 30m); pinned benches never sleep.
    #[arg(long, env = "BENCHCTL_SLEEP_AFTER", value_name = "DURATION")]
    pub sleep_after: Option<String>,

    /// How often the benches' inbound connections are read for --sleep-after (default: a tenth
    /// of it, between 1s and 1m).
    #[arg(long, value_name = "DURATION", requires = "sleep_after")]
    pub sleep_sample: Option<String>,

    /// Be the benches' front door on this address (e.g. 0.0.0.0:80): requests are routed by
    /// their Host to the bench whose address (--url-template) has that host; a request for a
    /// sleeping bench wakes it.
    #[arg(long, env = "BENCHCTL_PROXY_LISTEN", value_name = "ADDR:PORT")]
    pub proxy_listen: Option<std::net::SocketAddr>,

    /// Seconds a request for a sleeping bench is held while it wakes; then a browser gets a
    /// "waking up" page that reloads itself (anything else a 503 with Retry-After).
    #[arg(long, default_value_t = 20, value_name = "SECONDS", value_parser = crate::settings::values::seconds(), requires = "proxy_listen")]
    pub wake_hold: u64,

    /// A loopback address of the dashboard's own, without credentials (e.g. 127.0.0.1:8781).
    #[arg(long, value_name = "ADDR:PORT", requires = "dashboard")]
    pub dashboard_listen: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub bench: BenchArgs,

    #[command(flatten)]
    pub lock: LockArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,

    #[command(flatten)]
    pub code_host: CodeHostArgs,
}
