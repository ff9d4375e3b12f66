//! Where the Tracker is and who benchctl is there: the API base URL, the OAuth or IAM token
//! (from the environment or a file), the organization, and the retry bounds.

use crate::secret::{token, EnvSource, Secret};
use crate::{env, Error, Result};
use std::path::PathBuf;

pub const DEFAULT_TRACKER_URL: &str = "https://api.tracker.yandex.net";

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
pub fn retry_policy(envs: &dyn EnvSource) -> Result<super::RetryPolicy> {
    let mut p = super::RetryPolicy::default();
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
        let secs = v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=3600).contains(n))
            .ok_or_else(|| {
                Error::usage(format!(
                    "{} must be a number of seconds from 1 to 3600, not `{v}`",
                    env::TRACKER_RETRY_SECS
                ))
            })?;
        p.max_total = std::time::Duration::from_secs(secs);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
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
}
