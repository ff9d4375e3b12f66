//! Every environment variable benchctl reads, in one place.

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
/// Token used for https git remotes (sent as the password of user `x-access-token`,
/// or of `BENCHCTL_GIT_USER` when set).
pub const GIT_TOKEN: &str = "BENCHCTL_GIT_TOKEN";
pub const GIT_USER: &str = "BENCHCTL_GIT_USER";
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
