//! Settings resolution: flags > environment > defaults.
//!
//! Tokens come only from the environment or from files, never from a flag value.

use crate::env;
use crate::secret::Secret;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub const DEFAULT_TRACKER_URL: &str = "https://api.tracker.yandex.net";
pub const DEFAULT_FIELD: &str = "benchLink";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerAuth {
    /// `Authorization: OAuth <token>`
    OAuth(Secret),
    /// `Authorization: Bearer <IAM token>`
    Iam(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerOrg {
    /// `X-Org-ID` (Yandex 360 organization)
    Org(String),
    /// `X-Cloud-Org-ID` (Yandex Cloud organization)
    Cloud(String),
}

#[derive(Debug, Clone)]
pub struct TrackerConfig {
    pub base_url: String,
    pub auth: TrackerAuth,
    pub org: TrackerOrg,
}

/// Where the Tracker token may come from besides the environment.
#[derive(Debug, Default, Clone)]
pub struct TokenFiles {
    pub oauth: Option<PathBuf>,
    pub iam: Option<PathBuf>,
}

/// A source of environment variables (the process environment, or a map in tests).
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        env::var(name)
    }
}

impl EnvSource for std::collections::HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string())
    }
}

fn read_token_file(path: &Path, what: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the {what} token file `{}`: {e}",
            path.display()
        ))
    })?;
    let token = Secret::new(text.trim());
    if token.expose().is_empty() {
        return Err(Error::usage(format!(
            "the {what} token file `{}` is empty",
            path.display()
        )));
    }
    Ok(token)
}

/// A token from the variable `var`, or from a file (the flag's, else `file_var`'s); both is an
/// error that names them.
fn token(
    envs: &dyn EnvSource,
    var: &str,
    file_var: &str,
    flag_file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<Secret>> {
    let file = flag_file
        .clone()
        .or_else(|| envs.get(file_var).map(PathBuf::from));
    match (envs.get(var), file) {
        (Some(_), Some(f)) => Err(Error::usage(format!(
            "configuration error: both {var} and the {what} token file `{}` are set; keep one",
            f.display()
        ))),
        (Some(t), None) => Ok(Some(Secret::new(t))),
        (None, Some(f)) => read_token_file(&f, what).map(Some),
        (None, None) => Ok(None),
    }
}

/// A secret from the variable `var`, or from the file named by `<var>_FILE` (both is an error).
pub fn secret_from_env(envs: &dyn EnvSource, var: &str) -> Result<Option<Secret>> {
    let file_var = format!("{var}_FILE");
    token(
        envs,
        var,
        &file_var,
        &None,
        &var.to_ascii_lowercase().replace('_', " "),
    )
}

/// Resolves the Tracker connection. `Ok(None)` means no Tracker is configured at all (no token
/// and no organization): benches are deployed without a link. A half or contradictory
/// configuration is an error that names the variables involved.
pub fn tracker_config(
    envs: &dyn EnvSource,
    url_flag: Option<&str>,
    files: &TokenFiles,
) -> Result<Option<TrackerConfig>> {
    let oauth = token(
        envs,
        env::TRACKER_TOKEN,
        env::TRACKER_TOKEN_FILE,
        &files.oauth,
        "OAuth",
    )?;
    let iam = token(
        envs,
        env::TRACKER_IAM_TOKEN,
        env::TRACKER_IAM_TOKEN_FILE,
        &files.iam,
        "IAM",
    )?;
    let org = envs.get(env::TRACKER_ORG_ID);
    let cloud = envs.get(env::TRACKER_CLOUD_ORG_ID);

    let auth = match (oauth, iam) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(format!(
                "configuration error: both an OAuth token ({}) and an IAM token ({}) are set; \
                 set exactly one",
                env::TRACKER_TOKEN,
                env::TRACKER_IAM_TOKEN
            )))
        }
        (Some(t), None) => Some(TrackerAuth::OAuth(t)),
        (None, Some(t)) => Some(TrackerAuth::Iam(t)),
        (None, None) => None,
    };
    let org = match (org, cloud) {
        (Some(_), Some(_)) => {
            return Err(Error::usage(format!(
                "configuration error: both {} and {} are set; the Tracker takes exactly one \
                 organization header, set only one of them",
                env::TRACKER_ORG_ID,
                env::TRACKER_CLOUD_ORG_ID
            )))
        }
        (Some(o), None) => Some(TrackerOrg::Org(o)),
        (None, Some(o)) => Some(TrackerOrg::Cloud(o)),
        (None, None) => None,
    };
    let base_url = url_flag
        .map(str::to_string)
        .or_else(|| envs.get(env::TRACKER_URL))
        .unwrap_or_else(|| DEFAULT_TRACKER_URL.to_string())
        .trim_end_matches('/')
        .to_string();
    match (auth, org) {
        (None, None) => Ok(None),
        (Some(auth), Some(org)) => Ok(Some(TrackerConfig {
            base_url,
            auth,
            org,
        })),
        (Some(_), None) => Err(Error::usage(format!(
            "configuration error: a Tracker token is set but no organization; set {} \
             (Yandex 360) or {} (Yandex Cloud)",
            env::TRACKER_ORG_ID,
            env::TRACKER_CLOUD_ORG_ID
        ))),
        (None, Some(_)) => Err(Error::usage(format!(
            "configuration error: a Tracker organization is set but no token; set {} (OAuth) \
             or {} (IAM), or pass --tracker-token-file",
            env::TRACKER_TOKEN,
            env::TRACKER_IAM_TOKEN
        ))),
    }
}

/// The Tracker retry bounds: `BENCHCTL_TRACKER_RETRIES` tries, within
/// `BENCHCTL_TRACKER_RETRY_SECS` seconds in all.
pub fn retry_policy(envs: &dyn EnvSource) -> Result<crate::tracker::RetryPolicy> {
    let mut p = crate::tracker::RetryPolicy::default();
    if let Some(v) = envs.get(env::TRACKER_RETRIES) {
        p.max_tries = v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=20).contains(n))
            .ok_or_else(|| {
                Error::usage(format!(
                    "{} must be 1 to 20, not `{v}`",
                    env::TRACKER_RETRIES
                ))
            })?;
    }
    if let Some(v) = envs.get(env::TRACKER_RETRY_SECS) {
        let secs = v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Error::usage(format!(
                "{} must be a number of seconds, not `{v}`",
                env::TRACKER_RETRY_SECS
            ))
        })?;
        p.max_total = std::time::Duration::from_secs(secs);
    }
    Ok(p)
}

/// The field that holds the bench address: flag > env > `benchLink`.
pub fn bench_field(flag: Option<&str>, envs: &dyn EnvSource) -> Result<String> {
    let field = flag
        .map(str::to_string)
        .or_else(|| envs.get(env::BENCH_FIELD))
        .unwrap_or_else(|| DEFAULT_FIELD.to_string());
    let ok = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(field)
    } else {
        Err(Error::usage(format!(
            "`{}` is not a Tracker field key (letters, digits, `-`, `_`; a local field looks \
             like `<hex>--benchLink`)",
            field.escape_debug()
        )))
    }
}

/// The host name used in bench addresses: flag > env > a remote engine's host > this
/// machine's host name.
pub fn public_host(flag: Option<&str>, envs: &dyn EnvSource) -> String {
    flag.map(str::to_string)
        .or_else(|| envs.get(env::PUBLIC_HOST))
        .or_else(|| remote_engine_host(envs))
        .unwrap_or_else(machine_hostname)
}

/// The host name of a remote engine (`DOCKER_HOST=tcp://build.example.com:2376`): benches
/// publish their ports there.
pub fn remote_engine_host(envs: &dyn EnvSource) -> Option<String> {
    crate::engine::endpoint::Endpoint::from_env(&|k| envs.get(k))
        .ok()?
        .remote_host()
        .map(str::to_string)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&'static str, &'static str)]) -> Result<Option<TrackerConfig>> {
        let m: HashMap<&str, &str> = pairs.iter().cloned().collect();
        tracker_config(&m, None, &TokenFiles::default())
    }

    #[test]
    fn none_configured_means_no_link() {
        assert!(cfg(&[]).unwrap().is_none());
    }

    #[test]
    fn oauth_and_iam_variants() {
        let c = cfg(&[(env::TRACKER_TOKEN, "t1"), (env::TRACKER_ORG_ID, "42")])
            .unwrap()
            .unwrap();
        assert!(matches!(c.auth, TrackerAuth::OAuth(_)));
        assert_eq!(c.org, TrackerOrg::Org("42".into()));
        assert_eq!(c.base_url, DEFAULT_TRACKER_URL);
        let c = cfg(&[
            (env::TRACKER_IAM_TOKEN, "t2"),
            (env::TRACKER_CLOUD_ORG_ID, "bpf"),
        ])
        .unwrap()
        .unwrap();
        assert!(matches!(c.auth, TrackerAuth::Iam(_)));
        assert_eq!(c.org, TrackerOrg::Cloud("bpf".into()));
    }

    #[test]
    fn both_or_half_is_a_named_configuration_error() {
        let e = cfg(&[
            (env::TRACKER_TOKEN, "t"),
            (env::TRACKER_ORG_ID, "1"),
            (env::TRACKER_CLOUD_ORG_ID, "2"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("BENCHCTL_TRACKER_CLOUD_ORG_ID"));
        assert_eq!(e.exit_code(), 2);
        let e = cfg(&[(env::TRACKER_TOKEN, "t")]).unwrap_err();
        assert!(e.to_string().contains("no organization"));
        let e = cfg(&[(env::TRACKER_ORG_ID, "1")]).unwrap_err();
        assert!(e.to_string().contains("no token"));
        let e = cfg(&[
            (env::TRACKER_TOKEN, "t"),
            (env::TRACKER_IAM_TOKEN, "u"),
            (env::TRACKER_ORG_ID, "1"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("exactly one"));
    }

    #[test]
    fn token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tok");
        std::fs::write(&p, "filetoken-xyz\n").unwrap();
        let m: HashMap<&str, &str> = [(env::TRACKER_ORG_ID, "1")].into_iter().collect();
        let files = TokenFiles {
            oauth: Some(p),
            iam: None,
        };
        let c = tracker_config(&m, Some("http://127.0.0.1:1/"), &files)
            .unwrap()
            .unwrap();
        assert_eq!(c.auth, TrackerAuth::OAuth(Secret::new("filetoken-xyz")));
        assert_eq!(c.base_url, "http://127.0.0.1:1");
    }

    #[test]
    fn field_keys() {
        let m: HashMap<&str, &str> = HashMap::new();
        assert_eq!(bench_field(None, &m).unwrap(), "benchLink");
        assert_eq!(
            bench_field(Some("6063181a59590578909db920--benchLink"), &m).unwrap(),
            "6063181a59590578909db920--benchLink"
        );
        assert!(bench_field(Some("a/b"), &m).is_err());
    }
}
