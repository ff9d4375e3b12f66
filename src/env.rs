//! Every environment variable benchctl reads, in one place, and the machine's host name.

pub const TRACKER_URL: &str = "BENCHCTL_TRACKER_URL";
pub const TRACKER_TOKEN: &str = "BENCHCTL_TRACKER_TOKEN";
pub const TRACKER_IAM_TOKEN: &str = "BENCHCTL_TRACKER_IAM_TOKEN";
pub const TRACKER_TOKEN_FILE: &str = "BENCHCTL_TRACKER_TOKEN_FILE";
pub const TRACKER_IAM_TOKEN_FILE: &str = "BENCHCTL_TRACKER_IAM_TOKEN_FILE";
pub const TRACKER_ORG_ID: &str = "BENCHCTL_TRACKER_ORG_ID";
pub const TRACKER_CLOUD_ORG_ID: &str = "BENCHCTL_TRACKER_CLOUD_ORG_ID";
/// Tries per Tracker request (429, 5xx, connection errors), default 5.
pub const TRACKER_RETRIES: &str = "BENCHCTL_TRACKER_RETRIES";
/// Seconds all tries of one Tracker request may take together, default 30.
pub const TRACKER_RETRY_SECS: &str = "BENCHCTL_TRACKER_RETRY_SECS";
/// Where cached clones live (`--cache-dir`).
pub const CACHE_DIR: &str = "BENCHCTL_CACHE_DIR";
pub const BENCH_FIELD: &str = "BENCHCTL_BENCH_FIELD";
pub const PUBLIC_HOST: &str = "BENCHCTL_PUBLIC_HOST";
pub const ISSUE_PATTERN: &str = "BENCHCTL_ISSUE_PATTERN";
/// The bench's address as a template (`--url-template`).
pub const URL_TEMPLATE: &str = "BENCHCTL_URL_TEMPLATE";
/// Token used for https git remotes (sent as the password of user `x-access-token`,
/// or of `BENCHCTL_GIT_USER` when set).
pub const GIT_TOKEN: &str = "BENCHCTL_GIT_TOKEN";
pub const GIT_USER: &str = "BENCHCTL_GIT_USER";
/// Webhook secrets of `benchctl serve` (each also read from a file named by `<VAR>_FILE`).
pub const GITHUB_SECRET: &str = "BENCHCTL_GITHUB_SECRET";
pub const BITBUCKET_SECRET: &str = "BENCHCTL_BITBUCKET_SECRET";
pub const GITLAB_TOKEN: &str = "BENCHCTL_GITLAB_TOKEN";
/// Code host API tokens for commit statuses (each also read from `<VAR>_FILE`).
pub const GITHUB_TOKEN: &str = "BENCHCTL_GITHUB_TOKEN";
pub const GITLAB_API_TOKEN: &str = "BENCHCTL_GITLAB_API_TOKEN";
pub const BITBUCKET_TOKEN: &str = "BENCHCTL_BITBUCKET_TOKEN";
/// Which code host, its API and the repository's path there (self-hosted instances, mirrors).
pub const CODE_HOST: &str = "BENCHCTL_CODE_HOST";
pub const CODE_HOST_API: &str = "BENCHCTL_CODE_HOST_API";
pub const CODE_HOST_REPO: &str = "BENCHCTL_CODE_HOST_REPO";
/// The dashboard's HTTP Basic credentials (the password also from `<VAR>_FILE`).
pub const DASHBOARD_USER: &str = "BENCHCTL_DASHBOARD_USER";
pub const DASHBOARD_PASSWORD: &str = "BENCHCTL_DASHBOARD_PASSWORD";
/// The Tracker's web address, where the dashboard links issues.
pub const TRACKER_WEB_URL: &str = "BENCHCTL_TRACKER_WEB_URL";
/// Where serve's dashboard is reachable from outside (statuses link to it).
pub const DASHBOARD_URL: &str = "BENCHCTL_DASHBOARD_URL";
/// Keep one comment on the branch's pull request current (`--pr-comment`).
pub const PR_COMMENT: &str = "BENCHCTL_PR_COMMENT";
/// Seconds one code host call may take (default 5).
pub const CODE_HOST_TIMEOUT: &str = "BENCHCTL_CODE_HOST_TIMEOUT";
/// Sent by the Tracker trigger as `Authorization: Bearer <secret>`.
pub const TRACKER_HOOK_SECRET: &str = "BENCHCTL_TRACKER_HOOK_SECRET";
/// Notifications: a Slack incoming-webhook URL (a secret: it carries the token).
pub const SLACK_WEBHOOK_URL: &str = "BENCHCTL_SLACK_WEBHOOK_URL";
/// Notifications: a Telegram bot token and the chat to write to.
pub const TELEGRAM_BOT_TOKEN: &str = "BENCHCTL_TELEGRAM_BOT_TOKEN";
pub const TELEGRAM_CHAT_ID: &str = "BENCHCTL_TELEGRAM_CHAT_ID";
/// Telegram Bot API base URL (default `https://api.telegram.org`; tests point it at a fake).
pub const TELEGRAM_API_URL: &str = "BENCHCTL_TELEGRAM_API_URL";
/// A directory whose files override the built-in templates (`--templates-dir` of `serve`).
pub const TEMPLATES_DIR: &str = "BENCHCTL_TEMPLATES_DIR";
/// Where `benchctl serve` keeps its job queue and delivery ids (`--state-dir`).
pub const STATE_DIR: &str = "BENCHCTL_STATE_DIR";
/// Where benches run: `docker` (containers) or `swarm` (services), `--backend`.
pub const BACKEND: &str = "BENCHCTL_BACKEND";
/// How swarm benches publish their port: `ingress` (the routing mesh) or `host`.
pub const PUBLISH_MODE: &str = "BENCHCTL_PUBLISH_MODE";
/// Registry the swarm backend pushes images to (`--registry`).
pub const REGISTRY: &str = "BENCHCTL_REGISTRY";
/// Registry credentials (the password also from a file named by `<VAR>_FILE`); without them,
/// the docker CLI's `docker login` entry for the registry is used.
pub const REGISTRY_USER: &str = "BENCHCTL_REGISTRY_USER";
pub const REGISTRY_PASSWORD: &str = "BENCHCTL_REGISTRY_PASSWORD";
/// The docker CLI's config directory (`config.json` holds `docker login` credentials).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Ceilings of what a branch's `benchctl.toml` may ask for (`--max-memory`, `--max-cpus`,
/// `--max-pids`, `--max-ready-timeout`).
pub const MAX_MEMORY: &str = "BENCHCTL_MAX_MEMORY";
pub const MAX_RUNNING: &str = "BENCHCTL_MAX_RUNNING";
pub const MAX_MEMORY_TOTAL: &str = "BENCHCTL_MAX_MEMORY_TOTAL";
pub const MAX_CPUS: &str = "BENCHCTL_MAX_CPUS";
pub const MAX_PIDS: &str = "BENCHCTL_MAX_PIDS";
pub const MAX_READY_TIMEOUT: &str = "BENCHCTL_MAX_READY_TIMEOUT";
/// The variables a branch's benchctl.toml may name as build secrets.
pub const BUILD_SECRET_VARS: &str = "BENCHCTL_BUILD_SECRET_VARS";
/// Compose profiles whose services run too (`--profiles`).
pub const PROFILES: &str = "BENCHCTL_PROFILES";
/// What a branch's Compose file may have of the host's (`--compose-allow`).
pub const COMPOSE_ALLOW: &str = "BENCHCTL_COMPOSE_ALLOW";
/// The ceiling of hooks' timeouts (`--max-hook-timeout`).
pub const MAX_HOOK_TIMEOUT: &str = "BENCHCTL_MAX_HOOK_TIMEOUT";
/// Containers a Compose service may ask for (`--max-replicas`).
pub const MAX_REPLICAS: &str = "BENCHCTL_MAX_REPLICAS";
/// A local config file (`--config`).
pub const CONFIG: &str = "BENCHCTL_CONFIG";
/// Set by every CI system: plain output instead of progress bars.
pub const CI: &str = "CI";
pub const NO_COLOR: &str = "NO_COLOR";
/// Branch variables of CI systems, read (in this order) when `deploy` gets no branch.
pub const CI_BRANCH_VARS: &[&str] = &[
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "BITBUCKET_BRANCH",
];

/// Reads a variable, treating an empty value as unset.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// This machine's host name (`localhost` when it has none).
pub fn machine_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end]) {
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "localhost".to_string()
}
