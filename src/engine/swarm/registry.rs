//! Registry credentials for the swarm backend's pushes, found as the docker CLI finds them:
//! BENCHCTL_REGISTRY_USER/PASSWORD, else the docker config's credential helper or its
//! `docker login` entry.

use crate::{env, Error, Result};
use std::path::PathBuf;

/// A registry user and password (never shown).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: crate::secret::Secret,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryAuth({}, <redacted>)", self.username)
    }
}

/// The registry host of an image reference, as the engine reads it: the first path component
/// when it looks like a host (has a `.` or a `:`, or is `localhost`), else Docker Hub
/// (`docker.io`). Lowercased: host names compare without case.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".to_string(),
    }
}

/// Whether the credentials of the operator's `registry` may go with a request for image
/// `reference`: only when the image lives there (a branch names the images of its `image:`
/// services, and the engine offers the credentials it is given to that image's registry).
pub fn credentials_go_with(registry: &str, reference: &str) -> bool {
    let ours = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_ascii_lowercase();
    registry_of(reference) == ours
}

/// The credential helper the docker CLI uses for `registry`: its `credHelpers` entry, else
/// `credsStore` (`docker-credential-<name>`).
pub fn credential_helper(config_json: &str, registry: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let named = v
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| v.get("credsStore"))?;
    named.as_str().filter(|n| !n.is_empty()).map(str::to_string)
}

/// Asks `docker-credential-<helper> get` (the registry on its stdin, as the docker CLI does;
/// no shell) for the registry's credentials. `Ok(None)` when it has none.
pub fn helper_auth(helper: &str, registry: &str) -> Result<Option<RegistryAuth>> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let failed = |why: String| {
        Error::usage(format!(
            "the docker credential helper `{program}` (named in the docker config) could not give \
             the credentials of {registry}: {why}; fix it, or set BENCHCTL_REGISTRY_USER and \
             BENCHCTL_REGISTRY_PASSWORD"
        ))
    };
    let mut cmd = std::process::Command::new(&program);
    crate::git::ca::restore_env(&mut cmd);
    let mut child = cmd
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // the helpers' own wording for "nothing stored"
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!("{} {}", stdout.trim(), said.trim())));
    }
    let v: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| failed(format!("not JSON ({e})")))?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let (username, secret) = (field("Username"), field("Secret"));
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(RegistryAuth {
        username,
        password: crate::secret::Secret::new(secret),
    }))
}

/// The credentials the docker CLI stored for `registry` with `docker login` (the `auths`
/// entry of `config.json`; see [`credential_helper`] for the helpers).
pub fn docker_config_auth(config_json: &str, registry: &str) -> Option<RegistryAuth> {
    use base64::Engine as _;
    let v: serde_json::Value = serde_json::from_str(config_json).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(k, e)| {
        let host = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        (host == registry).then_some(e)
    })?;
    let raw = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some(RegistryAuth {
        username: user.to_string(),
        password: crate::secret::Secret::new(pass.to_string()),
    })
}

/// Registry credentials: BENCHCTL_REGISTRY_USER with BENCHCTL_REGISTRY_PASSWORD (or its
/// `_FILE`), else what the docker CLI would use (its credential helper for the registry, or
/// the `docker login` entry); none is fine (an open registry).
pub fn registry_auth(registry: &str) -> Result<Option<RegistryAuth>> {
    let password =
        crate::secret::secret_from_env(&crate::secret::ProcessEnv, env::REGISTRY_PASSWORD)?;
    match (env::var(env::REGISTRY_USER), password) {
        (Some(username), Some(password)) => return Ok(Some(RegistryAuth { username, password })),
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
    match credential_helper(&text, registry) {
        Some(helper) => helper_auth(&helper, registry),
        None => Ok(docker_config_auth(&text, registry)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_only_to_the_operators_registry() {
        let r = "registry.example.com:5000";
        assert!(credentials_go_with(
            r,
            "registry.example.com:5000/benchctl/p-1:abc"
        ));
        assert!(credentials_go_with(
            r,
            "Registry.Example.com:5000/x@sha256:00"
        ));
        for other in [
            "evil.example.com/x:1",
            "registry.example.com/x:1",
            "registry.example.com:5001/x:1",
            "busybox",
            "library/busybox:1",
            "registry.example.com:5000.evil.example/x:1",
            "localhost/x",
        ] {
            assert!(!credentials_go_with(r, other), "{other}");
        }
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(registry_of("user/app"), "docker.io");
    }

    #[test]
    fn docker_login_credentials_are_read_for_the_registry() {
        let config = r#"{"auths":{"https://reg.example.com:5000/":{"auth":"dXNlcjpwYXNzOndvcmQ="},
            "other.example.com":{"auth":"eDp5"}}}"#;
        let auth = docker_config_auth(config, "reg.example.com:5000").unwrap();
        assert_eq!(auth.username, "user");
        assert_eq!(auth.password.expose(), "pass:word");
        assert!(!format!("{auth:?}").contains("pass"));
        assert!(docker_config_auth(config, "nowhere.example.com").is_none());
        assert!(docker_config_auth("not json", "reg.example.com:5000").is_none());
    }

    #[test]
    fn the_credential_helper_is_the_registry_s_own_else_the_store() {
        let config = r#"{"credsStore":"desktop","credHelpers":{"reg.example.com":"ecr-login"}}"#;
        assert_eq!(
            credential_helper(config, "reg.example.com").as_deref(),
            Some("ecr-login")
        );
        assert_eq!(
            credential_helper(config, "other.example.com").as_deref(),
            Some("desktop")
        );
        assert_eq!(
            credential_helper(r#"{"auths":{}}"#, "reg.example.com"),
            None
        );
    }
}
