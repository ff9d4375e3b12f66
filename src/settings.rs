//! How a bench is built and run, from every layer that may say so, with where each value came
//! from: flags > environment > the local config (`--config`) > the repository's
//! `benchctl.toml` (at the deployed commit) > defaults.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The repository config's file name, at the root of the deployed branch.
pub const REPO_CONFIG: &str = "benchctl.toml";

/// A config file (`benchctl.toml` or `--config`). Every key is optional; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub dockerfile: Option<String>,
    /// Dockerfile template for a branch without a Dockerfile (`benchctl templates`).
    pub template: Option<String>,
    pub target: Option<String>,
    pub build_args: Option<BTreeMap<String, String>>,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    /// Seconds.
    pub ready_timeout: Option<u64>,
    pub limits: Option<LimitsConfig>,
    pub env: Option<BTreeMap<String, String>>,
    pub url_template: Option<String>,
    pub issue_pattern: Option<String>,
    pub field: Option<String>,
    /// Where benches run (`docker` or `swarm`): only in a local config, never a branch's.
    pub backend: Option<String>,
    /// How swarm benches publish their port (`ingress` or `host`): local config only.
    pub publish_mode: Option<String>,
    /// Registry the swarm backend pushes to: local config only.
    pub registry: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsConfig {
    pub memory: Option<String>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
}

/// Parses a config file's text; errors name the file, the line and the key.
pub fn parse(text: &str, origin: &str) -> Result<FileConfig> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().to_string();
        Error::usage(match line {
            Some(l) => format!("{origin}, line {l}: {msg}"),
            None => format!("{origin}: {msg}"),
        })
    })
}

/// Reads a local config file (`--config`).
pub fn read_local(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the config file `{}`: {e}",
            path.display()
        ))
    })?;
    parse(&text, &format!("config file `{}`", path.display()))
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "kebab-case")]
pub enum Origin {
    Flag(String),
    Env(String),
    EnvFile(String),
    LocalConfig(String),
    RepoConfig(String),
    Default,
}

impl Origin {
    /// Bench environment values from benchctl's environment or an env file are secrets.
    pub fn is_secret(&self) -> bool {
        matches!(self, Origin::Env(_) | Origin::EnvFile(_))
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "flag {n}"),
            Origin::Env(n) => write!(f, "environment {n}"),
            Origin::EnvFile(p) => write!(f, "env file {p}"),
            Origin::LocalConfig(p) => write!(f, "{p}"),
            Origin::RepoConfig(at) => write!(f, "{REPO_CONFIG} {at}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// One layer's say: a config file, or what flags and the environment gave (with their origins).
#[derive(Debug, Clone)]
pub struct Layer {
    pub config: FileConfig,
    /// The origin of each key of `config` that is set (`build-args.X`, `env.X` per entry).
    pub origins: BTreeMap<String, Origin>,
}

impl Layer {
    /// A whole file: every key it sets comes from `origin`.
    pub fn file(config: FileConfig, origin: Origin) -> Layer {
        let mut origins = BTreeMap::new();
        for key in set_keys(&config) {
            origins.insert(key, origin.clone());
        }
        Layer { config, origins }
    }
}

fn set_keys(c: &FileConfig) -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |k: &str, set: bool| {
        if set {
            keys.push(k.to_string());
        }
    };
    add("dockerfile", c.dockerfile.is_some());
    add("template", c.template.is_some());
    add("target", c.target.is_some());
    add("port", c.port.is_some());
    add("health-path", c.health_path.is_some());
    add("ready-timeout", c.ready_timeout.is_some());
    add("url-template", c.url_template.is_some());
    add("issue-pattern", c.issue_pattern.is_some());
    add("field", c.field.is_some());
    if let Some(l) = &c.limits {
        add("limits.memory", l.memory.is_some());
        add("limits.cpus", l.cpus.is_some());
        add("limits.pids", l.pids.is_some());
    }
    for k in c.build_args.iter().flat_map(|m| m.keys()) {
        keys.push(format!("build-args.{k}"));
    }
    for k in c.env.iter().flat_map(|m| m.keys()) {
        keys.push(format!("env.{k}"));
    }
    keys
}

/// The defaults, as a layer.
pub fn defaults() -> FileConfig {
    FileConfig {
        dockerfile: Some("Dockerfile".into()),
        template: None,
        target: None,
        build_args: None,
        port: None,
        health_path: Some("/".into()),
        ready_timeout: Some(60),
        limits: Some(LimitsConfig {
            memory: Some("512m".into()),
            cpus: Some(1.0),
            pids: Some(256),
        }),
        env: None,
        url_template: None,
        issue_pattern: Some(crate::naming::DEFAULT_ISSUE_PATTERN.into()),
        field: Some("benchLink".into()),
        ..Default::default()
    }
}

/// The merged settings and the origin of each.
#[derive(Debug, Clone)]
pub struct Effective {
    pub config: FileConfig,
    pub origins: BTreeMap<String, Origin>,
}

/// Merges layers, highest precedence first; maps (build args, env) merge key by key.
pub fn merge(layers: &[&Layer]) -> Effective {
    let mut out = FileConfig::default();
    let mut origins = BTreeMap::new();
    let all: Vec<Layer> = layers
        .iter()
        .map(|l| (*l).clone())
        .chain(std::iter::once(Layer::file(defaults(), Origin::Default)))
        .collect();
    macro_rules! pick {
        ($field:ident, $key:expr) => {
            for l in &all {
                if let Some(v) = &l.config.$field {
                    out.$field = Some(v.clone());
                    if let Some(o) = l.origins.get($key) {
                        origins.insert($key.to_string(), o.clone());
                    }
                    break;
                }
            }
        };
    }
    pick!(dockerfile, "dockerfile");
    pick!(template, "template");
    pick!(target, "target");
    pick!(port, "port");
    pick!(health_path, "health-path");
    pick!(ready_timeout, "ready-timeout");
    pick!(url_template, "url-template");
    pick!(issue_pattern, "issue-pattern");
    pick!(field, "field");
    let mut limits = LimitsConfig::default();
    macro_rules! pick_limit {
        ($field:ident, $key:expr) => {
            for l in &all {
                if let Some(v) = l.config.limits.as_ref().and_then(|x| x.$field.clone()) {
                    limits.$field = Some(v);
                    if let Some(o) = l.origins.get($key) {
                        origins.insert($key.to_string(), o.clone());
                    }
                    break;
                }
            }
        };
    }
    pick_limit!(memory, "limits.memory");
    pick_limit!(cpus, "limits.cpus");
    pick_limit!(pids, "limits.pids");
    out.limits = Some(limits);
    let mut maps = |get: fn(&FileConfig) -> Option<&BTreeMap<String, String>>, prefix: &str| {
        let mut merged = BTreeMap::new();
        for l in all.iter().rev() {
            for (k, v) in get(&l.config).into_iter().flatten() {
                merged.insert(k.clone(), v.clone());
                let key = format!("{prefix}.{k}");
                if let Some(o) = l.origins.get(&key) {
                    origins.insert(key, o.clone());
                }
            }
        }
        (!merged.is_empty()).then_some(merged)
    };
    out.build_args = maps(|c| c.build_args.as_ref(), "build-args");
    out.env = maps(|c| c.env.as_ref(), "env");
    Effective {
        config: out,
        origins,
    }
}

/// Environment variable names a bench may get (as the shell and Docker accept them).
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a size like `256k`, `5m`, `1g`, `1048576`.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("`{s}` is not a size (e.g. 512m, 1g)")))?;
    Ok((n * mult as f64) as i64)
}

/// Parses a memory limit (at least Docker's minimum of 6m).
pub fn parse_memory(s: &str) -> Result<i64> {
    let bytes = parse_bytes(s)?;
    if bytes < 6 * (1 << 20) {
        return Err(Error::usage(format!(
            "memory limit `{s}` is below Docker's minimum of 6m"
        )));
    }
    Ok(bytes)
}

/// Reads an env file (`NAME=value` per line, `#` comments, blank lines; a bare `NAME` takes
/// the value from benchctl's environment), as `docker run --env-file` does: no quoting.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the env file `{}`: {e}",
            path.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_end().to_string(), Some(v.to_string())),
            None => (line.trim_end().to_string(), None),
        };
        if !valid_env_name(&name) {
            return Err(Error::usage(format!(
                "env file `{}`, line {}: `{}` is not a variable name",
                path.display(),
                n + 1,
                name.escape_debug()
            )));
        }
        let value = match value {
            Some(v) => v,
            None => std::env::var(&name).map_err(|_| {
                Error::usage(format!(
                    "env file `{}`, line {}: {name} has no value and is not set in the environment",
                    path.display(),
                    n + 1
                ))
            })?,
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Everything a deploy's settings come from besides the repository's config.
pub struct Inputs<'a> {
    /// Settings that are not in config files (bind, public host, link, cache, ...), as a
    /// request whose repository, branch and issue are filled in by [`resolve`].
    pub base: &'a crate::app::request::DeployRequest,
    /// What flags and the environment gave.
    pub explicit: &'a Layer,
    /// `--config`.
    pub local: Option<&'a Layer>,
    /// `--issue`, when given.
    pub issue: Option<&'a str>,
    /// A user's template directory (`BENCHCTL_TEMPLATES_DIR`).
    pub templates_dir: Option<&'a Path>,
}

/// The repository's config at the head of `branch` as a layer (`None` when it has none).
pub fn repo_layer(
    repo: &crate::git::RepoSpec,
    branch: &str,
    cache: &Path,
    reporter: &crate::output::SharedReporter,
) -> Result<(crate::git::BranchPeek, Option<Layer>)> {
    let peek = crate::git::peek_branch(repo, branch, cache, REPO_CONFIG, reporter)?;
    let at = format!(
        "of branch {branch} at {}",
        crate::naming::short_commit(&peek.head)
    );
    let layer = match &peek.text {
        Some(text) => {
            let config = parse(text, &format!("{REPO_CONFIG} {at}"))?;
            let engine_keys = [
                ("backend", config.backend.is_some()),
                ("publish-mode", config.publish_mode.is_some()),
                ("registry", config.registry.is_some()),
            ];
            if let Some((key, _)) = engine_keys.iter().find(|(_, set)| *set) {
                return Err(Error::usage(format!(
                    "{REPO_CONFIG} {at} sets `{key}`, which only whoever runs benchctl chooses \
                     (where benches run is the same for every branch): remove it from the \
                     branch and set it with --{key}, the environment, or a --config file"
                )));
            }
            Some(Layer::file(config, Origin::RepoConfig(at)))
        }
        None => None,
    };
    Ok((peek, layer))
}

/// Merges the layers (reading the repository's config at the branch's head), derives the
/// issue key, and checks every value: the request the deploy runs with, and where each setting
/// came from. Blocking (git).
pub fn resolve(
    inputs: &Inputs,
    repo: crate::git::RepoSpec,
    branch: &str,
    reporter: &crate::output::SharedReporter,
) -> Result<(crate::app::request::DeployRequest, Effective)> {
    let (peek, repo_config) = match repo_layer(&repo, branch, &inputs.base.cache_dir, reporter) {
        Ok(l) => l,
        // a branch that does not exist and carries no key: the key is the first thing wrong
        Err(Error::BranchNotFound { .. }) if inputs.issue.is_none() => {
            let mut layers = vec![inputs.explicit];
            layers.extend(inputs.local);
            let pattern = merge(&layers).config.issue_pattern.unwrap_or_default();
            crate::naming::issue_key_from_branch(branch, &pattern)?;
            return Err(Error::BranchNotFound {
                branch: branch.to_string(),
                repo: repo.location.clone(),
            });
        }
        Err(e) => return Err(e),
    };
    let mut layers = vec![inputs.explicit];
    layers.extend(inputs.local);
    layers.extend(repo_config.as_ref());
    let effective = merge(&layers);
    let c = &effective.config;
    let issue = match inputs.issue {
        Some(k) => crate::naming::normalize_issue_key(k)?,
        None => crate::naming::issue_key_from_branch(
            branch,
            c.issue_pattern.as_deref().unwrap_or_default(),
        )?,
    };
    let mut req = apply(inputs.base, &effective)?;
    // a Dockerfile template: named (--template / `template`), or chosen by what the branch
    // holds when it has no Dockerfile where the (default) path says
    let dockerfile_named = effective
        .origins
        .get("dockerfile")
        .is_some_and(|o| *o != Origin::Default);
    req.template = match &c.template {
        Some(name) => Some(crate::templates::load(
            name,
            inputs.templates_dir,
            format!("template named{}", named(&effective.origins, "template")),
        )?),
        None if !dockerfile_named
            && !crate::git::commit_has_file(
                &repo,
                &inputs.base.cache_dir,
                &peek.head,
                &req.dockerfile,
            ) =>
        {
            crate::templates::detect(&peek.root)
                .map(|(name, why)| crate::templates::load(name, inputs.templates_dir, why))
                .transpose()?
        }
        None => None,
    };
    let mut req = req.for_branch(repo, branch, &issue);
    req.head_hint = Some(peek.head.clone());
    Ok((req, effective))
}

fn named(origins: &BTreeMap<String, Origin>, key: &str) -> String {
    origins
        .get(key)
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default()
}

/// Refuses, before any work, a deploy that has nothing to build: the branch has no Dockerfile
/// where the settings say, and no template was chosen.
pub fn ensure_buildable(req: &crate::app::request::DeployRequest) -> Result<()> {
    let Some(head) = &req.head_hint else {
        return Ok(());
    };
    if req.template.is_none()
        && !crate::git::commit_has_file(&req.repo, &req.cache_dir, head, &req.dockerfile)
    {
        return Err(Error::usage(format!(
            "branch `{}` has no `{}` and no template fits it; add a Dockerfile to the \
             branch, pass --dockerfile <path>, or --template <name> (`benchctl templates` lists \
             them)",
            req.branch, req.dockerfile
        )));
    }
    Ok(())
}

/// The request with the merged settings, each checked (errors say where the value came from).
pub fn apply(
    base: &crate::app::request::DeployRequest,
    e: &Effective,
) -> Result<crate::app::request::DeployRequest> {
    use crate::app::request::{BenchEnv, EnvValue};
    let c = &e.config;
    let o = &e.origins;
    let limits = c.limits.clone().unwrap_or_default();
    let ready = c.ready_timeout.unwrap_or(60);
    if ready == 0 {
        return Err(Error::usage(format!(
            "the ready timeout must be at least 1 second{}",
            named(o, "ready-timeout")
        )));
    }
    let cpus = limits.cpus.unwrap_or(1.0);
    if !(cpus > 0.0 && cpus <= 1024.0) {
        return Err(Error::usage(format!(
            "cpus {cpus} is out of range{}",
            named(o, "limits.cpus")
        )));
    }
    let pids = limits.pids.unwrap_or(256);
    if pids < 1 {
        return Err(Error::usage(format!(
            "the pids limit must be positive{}",
            named(o, "limits.pids")
        )));
    }
    let memory = parse_memory(limits.memory.as_deref().unwrap_or("512m"))
        .map_err(|err| Error::usage(format!("{err}{}", named(o, "limits.memory"))))?;
    let health_path = c.health_path.clone().unwrap_or_else(|| "/".into());
    if !health_path.starts_with('/')
        || health_path
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(Error::usage(format!(
            "health path `{}` must start with `/` and hold no spaces{}",
            health_path.escape_debug(),
            named(o, "health-path")
        )));
    }
    let mut env = Vec::new();
    for (name, value) in c.env.iter().flatten() {
        let key = format!("env.{name}");
        if !valid_env_name(name) {
            return Err(Error::usage(format!(
                "`{}` is not an environment variable name{}",
                name.escape_debug(),
                named(o, &key)
            )));
        }
        let secret = o.get(&key).is_some_and(Origin::is_secret);
        env.push(BenchEnv {
            name: name.clone(),
            value: if secret {
                EnvValue::Secret(crate::secret::Secret::new(value.clone()))
            } else {
                EnvValue::Plain(value.clone())
            },
        });
    }
    for name in c.build_args.iter().flat_map(|m| m.keys()) {
        if !valid_env_name(name) {
            return Err(Error::usage(format!(
                "`{}` is not a build argument name{}",
                name.escape_debug(),
                named(o, &format!("build-args.{name}"))
            )));
        }
    }
    if let Some(t) = &c.url_template {
        crate::naming::check_url_template(t)
            .map_err(|err| Error::usage(format!("{err}{}", named(o, "url-template"))))?;
    }
    if base.router.is_some() {
        match &c.url_template {
            None => {
                return Err(Error::usage(
                    "--router traefik needs --url-template (the host name the proxy routes)",
                ))
            }
            Some(t) if t.contains("{port}") => {
                return Err(Error::usage(format!(
                    "URL template `{t}`: a routed bench publishes no port, so {{port}} cannot be used{}",
                    named(o, "url-template")
                )))
            }
            _ => {}
        }
    }
    Ok(crate::app::request::DeployRequest {
        url_template: c.url_template.clone(),
        dockerfile: c.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
        port: c.port,
        ready_timeout: std::time::Duration::from_secs(ready),
        limits: crate::engine::Limits {
            memory_bytes: memory,
            nano_cpus: (cpus * 1e9) as i64,
            pids,
        },
        field: crate::config::bench_field(
            c.field.as_deref(),
            &std::collections::HashMap::<&str, &str>::new(),
        )
        .map_err(|err| Error::usage(format!("{err}{}", named(o, "field"))))?,
        build_args: c.build_args.clone().unwrap_or_default(),
        target: c.target.clone(),
        health_path,
        env,
        ..base.clone()
    })
}

/// One line of `benchctl config`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub key: String,
    pub value: String,
    pub origin: String,
}

/// The effective settings as rows; values of secret origin are shown as `***`.
pub fn rows(e: &Effective) -> Vec<Row> {
    let c = &e.config;
    let limits = c.limits.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut push = |key: &str, value: Option<String>, fallback: &str| {
        let origin = e.origins.get(key);
        let value = match (origin, value) {
            (Some(o), Some(_)) if key.starts_with("env.") && o.is_secret() => "***".to_string(),
            (_, Some(v)) => v,
            (_, None) => fallback.to_string(),
        };
        out.push(Row {
            key: key.to_string(),
            value,
            origin: origin.map_or("default".into(), |o| o.to_string()),
        });
    };
    push("dockerfile", c.dockerfile.clone(), "");
    push(
        "template",
        c.template.clone(),
        "- (only for a branch without a Dockerfile)",
    );
    push("target", c.target.clone(), "- (the last stage)");
    push(
        "port",
        c.port.map(|p| p.to_string()),
        "- (the image's EXPOSEd port)",
    );
    push("health-path", c.health_path.clone(), "");
    push(
        "ready-timeout",
        c.ready_timeout.map(|t| format!("{t}s")),
        "",
    );
    push("limits.memory", limits.memory.clone(), "");
    push("limits.cpus", limits.cpus.map(|v| v.to_string()), "");
    push("limits.pids", limits.pids.map(|v| v.to_string()), "");
    push(
        "url-template",
        c.url_template.clone(),
        "- (http://<public host>:<published port>/)",
    );
    push("issue-pattern", c.issue_pattern.clone(), "");
    push("field", c.field.clone(), "");
    for (k, v) in c.build_args.iter().flatten() {
        push(&format!("build-args.{k}"), Some(v.clone()), "");
    }
    for (k, v) in c.env.iter().flatten() {
        push(&format!("env.{k}"), Some(v.clone()), "");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1GB").unwrap(), 1 << 30);
        assert!(parse_memory("1k").is_err());
        assert!(parse_memory("lots").is_err());
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let e = parse(
            "port = 8080\n\n[limits]\nmemory = \"1g\"\nspeed = 3\n",
            "benchctl.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 5") && e.contains("speed"), "{e}");
        let e = parse("port = \"x\"\n", "f").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn precedence_and_origins() {
        let repo = parse(
            "port = 3000\nhealth-path = \"/health\"\n[env]\nA = \"repo\"\nB = \"repo\"\n[limits]\ncpus = 2.0\n",
            "r",
        )
        .unwrap();
        let local = parse("port = 4000\n[env]\nB = \"local\"\n", "l").unwrap();
        let flags = FileConfig {
            limits: Some(LimitsConfig {
                cpus: Some(0.5),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut origins = BTreeMap::new();
        origins.insert("limits.cpus".to_string(), Origin::Flag("--cpus".into()));
        let flag_layer = Layer {
            config: flags,
            origins,
        };
        let local_layer = Layer::file(local, Origin::LocalConfig("l".into()));
        let repo_layer = Layer::file(repo, Origin::RepoConfig("at abc".into()));
        let e = merge(&[&flag_layer, &local_layer, &repo_layer]);
        assert_eq!(e.config.port, Some(4000));
        assert_eq!(e.origins["port"], Origin::LocalConfig("l".into()));
        assert_eq!(e.config.health_path.as_deref(), Some("/health"));
        assert_eq!(
            e.origins["health-path"],
            Origin::RepoConfig("at abc".into())
        );
        assert_eq!(e.config.limits.as_ref().unwrap().cpus, Some(0.5));
        assert_eq!(
            e.config.limits.as_ref().unwrap().memory.as_deref(),
            Some("512m")
        );
        assert_eq!(e.origins["limits.memory"], Origin::Default);
        let env = e.config.env.unwrap();
        assert_eq!(env["A"], "repo");
        assert_eq!(env["B"], "local");
        assert_eq!(e.origins["env.B"], Origin::LocalConfig("l".into()));
        assert_eq!(e.config.dockerfile.as_deref(), Some("Dockerfile"));
    }
}
