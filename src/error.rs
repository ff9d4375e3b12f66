//! The error type and its mapping to exit codes.

use crate::tracker::TrackerError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, as documented in the README.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const NOT_LINKED: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or configuration (exit 2).
    #[error("{0}")]
    Usage(String),

    /// The branch carries no issue key (exit 2).
    #[error(
        "branch `{branch}` carries no issue key (looked for pattern `{pattern}`); \
         name the branch after the issue (e.g. `feature/PROJ-42-login`) or pass `--issue <KEY>`"
    )]
    NoIssueKey { branch: String, pattern: String },

    /// The branch does not exist in the repository (exit 2).
    #[error(
        "branch `{branch}` not found in repository `{repo}`; check the branch name \
         (`git ls-remote --heads {repo}`) and `--repo`"
    )]
    BranchNotFound { branch: String, repo: String },

    /// Cloning or fetching failed (exit 1).
    #[error("git: could not fetch branch `{branch}` from `{repo}`: {message}")]
    Git {
        branch: String,
        repo: String,
        message: String,
    },

    /// Preparing the build context failed (exit 1).
    #[error("build context for {issue}: {message}")]
    Context { issue: String, message: String },

    /// The image build failed (exit 1); `message` is the engine's error.
    #[error("build of {issue} (branch `{branch}`) failed: {message}\nnothing was started; fix the Dockerfile or the branch and deploy again")]
    Build {
        issue: String,
        branch: String,
        message: String,
    },

    /// The container engine failed or is unreachable (exit 1).
    #[error("{0}")]
    Engine(String),

    /// The new container exited or never became ready (exit 1).
    #[error("bench for {issue} did not become ready: {reason}{}\nthe new version was removed{}", logs_suffix(.logs), kept_suffix(.kept_old))]
    NotReady {
        issue: String,
        reason: String,
        logs: Vec<String>,
        kept_old: bool,
    },

    /// Another deploy or teardown of the issue held the lock for longer than `--lock-timeout`.
    #[error(
        "{issue} is locked by {holder} ({purpose}) since {since}; gave up after {waited} s \
         (--lock-timeout). Wait for it to finish, or raise --lock-timeout"
    )]
    Locked {
        issue: String,
        holder: String,
        purpose: String,
        since: String,
        waited: u64,
    },

    /// Interrupted by a signal (exit 128 + signal).
    #[error("interrupted by {signal}; {cleanup}")]
    Interrupted {
        signal: String,
        cleanup: String,
        code: i32,
    },

    /// A Tracker request failed where no bench outcome is at stake (exit 1).
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

fn logs_suffix(logs: &[String]) -> String {
    if logs.is_empty() {
        "\n(the container printed nothing)".to_string()
    } else {
        format!(
            "\nlast {} log line(s) of the container:\n  {}",
            logs.len(),
            logs.join("\n  ")
        )
    }
}

fn kept_suffix(kept: &bool) -> &'static str {
    if *kept {
        "; the previous bench keeps running and the link is unchanged"
    } else {
        ""
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NoIssueKey { .. } | Error::BranchNotFound { .. } => {
                exit::USAGE
            }
            Error::Tracker(e) if e.is_usage() => exit::USAGE,
            Error::Interrupted { code, .. } => *code,
            _ => exit::FAILURE,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}

impl From<bollard::errors::Error> for Error {
    fn from(e: bollard::errors::Error) -> Self {
        Error::Engine(crate::engine::endpoint::describe_engine_error(&e))
    }
}
