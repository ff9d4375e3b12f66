//! Webhooks in: who sent them (authenticity, delivery ids, here) and what they mean for an
//! issue ([`intent`]). Pure functions over headers and the raw body; the server answers HTTP
//! and queues the [`Intent`]s. Formats: `shared/reference/webhooks.md`.

mod intent;
#[cfg(test)]
mod tests;

pub use intent::{parse, Intent, KeyFinder, Parsed, Review};

use crate::secret::Secret;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Who posts to which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    GitHub,
    Bitbucket,
    GitLab,
    Tracker,
    /// serve itself, on a schedule (its gc): no webhook.
    Schedule,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::GitHub => "github",
            Source::Bitbucket => "bitbucket",
            Source::GitLab => "gitlab",
            Source::Tracker => "tracker",
            Source::Schedule => "schedule",
        }
    }

    /// The variable that holds this source's secret.
    pub fn secret_var(self) -> &'static str {
        match self {
            Source::GitHub => crate::env::GITHUB_SECRET,
            Source::Bitbucket => crate::env::BITBUCKET_SECRET,
            Source::GitLab => crate::env::GITLAB_TOKEN,
            Source::Tracker => crate::env::TRACKER_HOOK_SECRET,
            Source::Schedule => "",
        }
    }

    pub const ALL: [Source; 4] = [
        Source::GitHub,
        Source::Bitbucket,
        Source::GitLab,
        Source::Tracker,
    ];
}

/// The secret of each source; a source without one is refused.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    pub github: Option<Secret>,
    pub bitbucket: Option<Secret>,
    pub gitlab: Option<Secret>,
    pub tracker: Option<Secret>,
}

impl Secrets {
    pub fn get(&self, source: Source) -> Option<&Secret> {
        match source {
            Source::GitHub => self.github.as_ref(),
            Source::Bitbucket => self.bitbucket.as_ref(),
            Source::GitLab => self.gitlab.as_ref(),
            Source::Tracker => self.tracker.as_ref(),
            Source::Schedule => None,
        }
    }

    /// Reads each secret from its variable, or from the file named by `<VAR>_FILE`. A secret
    /// set but empty (or only whitespace) is refused, as is one shorter than
    /// [`MIN_SECRET_LEN`] bytes unless `allow_weak`: either would let a forger sign.
    pub fn from_env(
        envs: &dyn crate::secret::EnvSource,
        allow_weak: bool,
    ) -> crate::Result<Secrets> {
        let read = |source: Source| -> crate::Result<Option<Secret>> {
            let var = source.secret_var();
            let secret = crate::secret::secret_from_env(envs, var)?;
            let len = secret.as_ref().map_or(0, |s| s.expose().len());
            let set = envs.is_set(var) || secret.is_some();
            if set && len == 0 {
                return Err(crate::Error::usage(format!(
                    "{var} is set but empty (or only whitespace): an empty secret verifies any \
                     delivery signed with the empty key; set it to a long random value \
                     (e.g. `openssl rand -hex 32`) or unset it to refuse {} deliveries",
                    source.name()
                )));
            }
            if set && len < MIN_SECRET_LEN && !allow_weak {
                return Err(crate::Error::usage(format!(
                    "{var} is {len} bytes long, shorter than {MIN_SECRET_LEN}: a short secret \
                     can be guessed; use a long random value (e.g. `openssl rand -hex 32`), or \
                     pass --allow-weak-secrets to accept it"
                )));
            }
            Ok(secret)
        };
        Ok(Secrets {
            github: read(Source::GitHub)?,
            bitbucket: read(Source::Bitbucket)?,
            gitlab: read(Source::GitLab)?,
            tracker: read(Source::Tracker)?,
        })
    }
}

/// The shortest webhook secret serve accepts without `--allow-weak-secrets`, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a delivery was refused before any work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 403: this source has no secret configured.
    NotConfigured(String),
    /// 401: missing, malformed or wrong signature/token.
    Unauthenticated(String),
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Constant-time equality of two byte strings (their SHA-256 digests are compared, so the
/// time does not depend on where they differ nor on the secret's length).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks `sha256=<hex>` against HMAC-SHA256(secret, body) in constant time.
pub fn verify_hmac_sha256(secret: &str, body: &[u8], signature: &str) -> Result<(), String> {
    if signature.starts_with("sha1=") {
        return Err("SHA-1 signatures are not accepted; configure the webhook for SHA-256".into());
    }
    let Some(hex_sig) = signature.strip_prefix("sha256=") else {
        return Err("the signature is not of the form sha256=<hex>".into());
    };
    let sig = hex::decode(hex_sig).map_err(|_| "the signature is not hex".to_string())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "the signature does not match the body".to_string())
}

/// `sha256=<hex HMAC-SHA256(secret, body)>` (what senders put in their signature header).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether this is Bitbucket Data Center's "Test connection" (answered 200 unsigned).
pub fn is_bitbucket_ping(headers: &HeaderMap) -> bool {
    header(headers, "x-event-key") == Some("diagnostics:ping")
}

/// Authenticity, before anything else is read: the source must have a secret, and the
/// delivery must carry a valid signature (GitHub, Bitbucket) or token (GitLab, Tracker).
pub fn authenticate(
    source: Source,
    secrets: &Secrets,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let Some(secret) = secrets.get(source) else {
        return Err(Refusal::NotConfigured(format!(
            "{} webhooks are not accepted: {} is not set",
            source.name(),
            source.secret_var()
        )));
    };
    let secret = secret.expose();
    let unauth = |m: &str| Err(Refusal::Unauthenticated(m.to_string()));
    if secret.is_empty() {
        return unauth("the secret configured for this source is empty");
    }
    match source {
        Source::GitHub | Source::Bitbucket => {
            let sig = header(headers, "x-hub-signature-256")
                .filter(|_| source == Source::GitHub)
                .or_else(|| header(headers, "x-hub-signature"));
            match sig {
                None => unauth("no X-Hub-Signature-256 / X-Hub-Signature header"),
                Some(sig) => {
                    verify_hmac_sha256(secret, body, sig).map_err(Refusal::Unauthenticated)
                }
            }
        }
        Source::GitLab => match header(headers, "x-gitlab-token") {
            Some(t) if ct_eq(t.as_bytes(), secret.as_bytes()) => Ok(()),
            Some(_) => unauth("the X-Gitlab-Token does not match"),
            None => unauth("no X-Gitlab-Token header"),
        },
        Source::Tracker => {
            let got = header(headers, "authorization").and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
            match got {
                Some(t) if ct_eq(t.as_bytes(), secret.as_bytes()) => Ok(()),
                Some(_) => unauth("the bearer token does not match"),
                None => unauth("no `Authorization: Bearer <secret>` header"),
            }
        }
        Source::Schedule => unauth("serve's own schedule is no webhook source"),
    }
}

/// The delivery id a redelivery repeats (see the reference's table).
pub fn delivery_id(source: Source, headers: &HeaderMap) -> Option<String> {
    let names: &[&str] = match source {
        Source::GitHub => &["x-github-delivery"],
        Source::Bitbucket => &["x-request-uuid", "x-request-id"],
        Source::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
        Source::Tracker | Source::Schedule => &[],
    };
    names
        .iter()
        .find_map(|n| header(headers, n))
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect())
}
