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
    LocalConfig(String),
    RepoConfig(String),
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "flag {n}"),
            Origin::Env(n) => write!(f, "environment {n}"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
