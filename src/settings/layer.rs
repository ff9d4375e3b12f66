//! Layers of settings and their merge: each layer (flags and environment, `--config`, the
//! branch's `benchctl.toml`, the defaults) holds values by key with where each came from; the
//! first layer that sets a key wins, and entries (`env.*`, `build-args.*`) merge one by one.

use super::keys::{Key, Kind, KEYS};
use serde::Serialize;
use std::collections::BTreeMap;

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
            Origin::RepoConfig(at) => write!(f, "{} {at}", super::REPO_CONFIG),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// One layer's say: values by key (`limits.memory`; `env.NAME` for each entry), each with its
/// origin.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub values: BTreeMap<String, String>,
    pub origins: BTreeMap<String, Origin>,
}

impl Layer {
    /// Sets `key` (a key's name, or `env.NAME` for an entry).
    pub fn set(&mut self, key: &str, value: impl Into<String>, origin: Origin) {
        self.values.insert(key.to_string(), value.into());
        self.origins.insert(key.to_string(), origin);
    }

    pub fn get(&self, key: &Key) -> Option<&str> {
        self.values.get(key.name).map(String::as_str)
    }

    /// The defaults, as a layer.
    pub fn defaults() -> Layer {
        let mut l = Layer::default();
        for k in KEYS {
            if let Some(d) = k.default {
                l.set(k.name, d, Origin::Default);
            }
        }
        l
    }
}

/// The merged settings and the origin of each.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    pub values: BTreeMap<String, String>,
    pub origins: BTreeMap<String, Origin>,
}

impl Effective {
    pub fn get(&self, key: &Key) -> Option<&str> {
        self.values.get(key.name).map(String::as_str)
    }

    /// The entries of an `Entries` key, by name.
    pub fn entries(&self, key: &Key) -> BTreeMap<String, String> {
        let prefix = format!("{}.", key.name);
        self.values
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
            .collect()
    }

    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.get(key)
    }

    /// ` (from <origin>)` for error messages, empty without one.
    pub fn from(&self, key: &str) -> String {
        self.origin(key)
            .map(|o| format!(" (from {o})"))
            .unwrap_or_default()
    }
}

fn entry_of<'a>(key: &Key, name: &'a str) -> Option<&'a str> {
    name.strip_prefix(key.name)?.strip_prefix('.')
}

/// Merges layers, highest precedence first, over the defaults; entries merge one by one.
pub fn merge(layers: &[&Layer]) -> Effective {
    let defaults = Layer::defaults();
    let all: Vec<&Layer> = layers.iter().copied().chain([&defaults]).collect();
    let mut out = Effective::default();
    for key in KEYS {
        if key.kind == Kind::Entries {
            for l in all.iter().rev() {
                for (name, v) in l.values.iter().filter(|(n, _)| entry_of(key, n).is_some()) {
                    out.values.insert(name.clone(), v.clone());
                    if let Some(o) = l.origins.get(name) {
                        out.origins.insert(name.clone(), o.clone());
                    }
                }
            }
        } else if let Some(l) = all.iter().find(|l| l.values.contains_key(key.name)) {
            out.values
                .insert(key.name.to_string(), l.values[key.name].clone());
            if let Some(o) = l.origins.get(key.name) {
                out.origins.insert(key.name.to_string(), o.clone());
            }
        }
    }
    out
}

/// One line of `benchctl config`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub key: String,
    pub value: String,
    pub origin: String,
}

impl Row {
    pub fn new(key: &str, value: impl Into<String>, origin: impl Into<String>) -> Row {
        Row {
            key: key.into(),
            value: value.into(),
            origin: origin.into(),
        }
    }
}

/// How a value reads in `config` (seconds with their unit).
fn shown(key: &Key, value: &str) -> String {
    match key.kind {
        Kind::Seconds => format!("{value}s"),
        _ => value.to_string(),
    }
}

/// The rows of `keys` (entries one row each); values of secret origin are shown as `***`.
pub fn rows(e: &Effective, keys: &[&Key]) -> Vec<Row> {
    let mut out = Vec::new();
    for key in keys {
        let origin = |name: &str| e.origin(name).map_or("default".into(), |o| o.to_string());
        if key.kind == Kind::Entries {
            for (name, v) in e.entries(key) {
                let full = format!("{}.{name}", key.name);
                let secret = e.origin(&full).is_some_and(Origin::is_secret);
                let value = if secret { "***".to_string() } else { v };
                out.push(Row::new(&full, value, origin(&full)));
            }
            continue;
        }
        let value = match e.get(key) {
            Some(v) => shown(key, v),
            None => key.unset.to_string(),
        };
        out.push(Row::new(key.name, value, origin(key.name)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::keys;
    use super::*;

    #[test]
    fn precedence_and_origins() {
        let mut flags = Layer::default();
        flags.set("limits.cpus", "0.5", Origin::Flag("--cpus".into()));
        let mut local = Layer::default();
        let at = Origin::LocalConfig("l".into());
        local.set("port", "4000", at.clone());
        local.set("env.B", "local", at.clone());
        let mut repo = Layer::default();
        let r = Origin::RepoConfig("at abc".into());
        for (k, v) in [
            ("port", "3000"),
            ("health-path", "/health"),
            ("env.A", "repo"),
            ("env.B", "repo"),
            ("limits.cpus", "2"),
        ] {
            repo.set(k, v, r.clone());
        }
        let e = merge(&[&flags, &local, &repo]);
        assert_eq!(e.get(&keys::PORT), Some("4000"));
        assert_eq!(e.origins["port"], at);
        assert_eq!(e.get(&keys::HEALTH_PATH), Some("/health"));
        assert_eq!(e.origins["health-path"], r);
        assert_eq!(e.get(&keys::CPUS), Some("0.5"));
        assert_eq!(e.get(&keys::MEMORY), Some("512m"));
        assert_eq!(e.origins["limits.memory"], Origin::Default);
        let env = e.entries(&keys::ENV);
        assert_eq!(env["A"], "repo");
        assert_eq!(env["B"], "local");
        assert_eq!(e.origins["env.B"], at);
        assert_eq!(e.get(&keys::DOCKERFILE), Some("Dockerfile"));
    }

    #[test]
    fn rows_show_units_defaults_and_hide_secret_values() {
        let mut flags = Layer::default();
        flags.set("env.TOKEN", "s3cret", Origin::Env("TOKEN".into()));
        flags.set("env.PLAIN", "p", Origin::Flag("--env".into()));
        let e = merge(&[&flags]);
        let rows = rows(&e, KEYS);
        let at = |k: &str| rows.iter().find(|r| r.key == k).unwrap().clone();
        assert_eq!(at("ready-timeout").value, "60s");
        assert_eq!(at("port").value, "- (the image's EXPOSEd port)");
        assert_eq!(at("port").origin, "default");
        assert_eq!(at("env.TOKEN").value, "***");
        assert_eq!(at("env.PLAIN").value, "p");
        assert_eq!(at("env.PLAIN").origin, "flag --env");
    }
}
