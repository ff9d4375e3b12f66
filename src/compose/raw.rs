//! A Compose file as written: the subset of the Compose specification benchctl runs, as serde
//! types over `serde-saphyr` (anchors and `<<` merge keys resolved by the parser). Scalars are
//! kept as text, since interpolation (`${VAR}`) comes before any value is typed; the forms the
//! specification allows (a command as a string or a list, `environment` as a map or a list,
//! short and long `ports`, `volumes`, `depends_on`, `build`) are untagged enums. Nested tables
//! refuse unknown keys with their line; the top level and services, where `x-*` extensions are
//! allowed, are checked by [`audit`].

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A scalar as text (`8080`, `0.5`, `true` and `"x"` alike, also inside the untagged forms);
/// `null` is `None` where allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct File {
    #[serde(default)]
    pub name: Option<Text>,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<TopVolume>>,
    #[serde(rename = "x-benchctl", default)]
    pub x_benchctl: Option<XBenchctl>,
}

/// `x-benchctl:` in the file: which service is the bench.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XBenchctl {
    pub web: Option<Text>,
}

/// A top-level volume: benchctl makes it (labelled); only a plain volume is accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopVolume {
    #[serde(default)]
    pub labels: Option<StringOrMap>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Service {
    pub build: Option<Build>,
    pub image: Option<Text>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    pub environment: Option<Environment>,
    pub env_file: Option<OneOrMany>,
    #[serde(default)]
    pub expose: Vec<Text>,
    #[serde(default)]
    pub ports: Vec<Port>,
    pub depends_on: Option<DependsOn>,
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
    pub tmpfs: Option<OneOrMany>,
    pub working_dir: Option<Text>,
    pub user: Option<Text>,
    pub restart: Option<Text>,
    pub deploy: Option<Deploy>,
    #[serde(default)]
    pub profiles: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Build {
    Context(Text),
    Long(BuildLong),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildLong {
    pub context: Option<Text>,
    pub dockerfile: Option<Text>,
    pub args: Option<Environment>,
    pub target: Option<Text>,
}

/// A command or entrypoint: a string (run by the image's shell form rules) or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Shell(Text),
    Exec(Vec<Text>),
}

/// `environment` / `args`: `NAME: value` (a null value takes benchctl's setting) or `NAME=value`
/// lines (a bare `NAME` likewise).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Environment {
    Map(BTreeMap<String, Option<Text>>),
    List(Vec<Text>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(Text),
    Many(Vec<Text>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<Text> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrMap {
    List(Vec<Text>),
    Map(BTreeMap<String, Option<Text>>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Port {
    Short(Text),
    Long(PortLong),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortLong {
    pub target: Text,
    pub published: Option<Text>,
    pub host_ip: Option<Text>,
    pub protocol: Option<Text>,
    pub mode: Option<Text>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DependsOn {
    List(Vec<Text>),
    Map(BTreeMap<String, DependsOnLong>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependsOnLong {
    pub condition: Option<Text>,
    pub restart: Option<Text>,
    pub required: Option<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    pub test: Option<Command>,
    pub interval: Option<Text>,
    pub timeout: Option<Text>,
    pub retries: Option<Text>,
    pub start_period: Option<Text>,
    pub disable: Option<Text>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Volume {
    Short(Text),
    Long(VolumeLong),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeLong {
    #[serde(rename = "type")]
    pub kind: Text,
    pub source: Option<Text>,
    pub target: Text,
    pub read_only: Option<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub resources: Option<Resources>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub limits: Option<Limits>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub cpus: Option<Text>,
    pub memory: Option<Text>,
    pub pids: Option<Text>,
}

/// The keys of a mapping with their lines.
#[derive(Debug, Default)]
pub struct Keys(pub Vec<(String, usize)>);

impl<'de> Deserialize<'de> for Keys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Keys, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = m.next_key::<serde_saphyr::Spanned<String>>()? {
                    m.next_value::<IgnoredAny>()?;
                    keys.push((k.value, k.referenced.line() as usize));
                }
                Ok(Keys(keys))
            }
        }
        d.deserialize_map(V)
    }
}

/// Keys allowed at the top level besides `x-*`.
pub const TOP_KEYS: &[&str] = &["name", "services", "volumes", "version", "x-benchctl"];

/// Keys allowed in a service besides `x-*`.
pub const SERVICE_KEYS: &[&str] = &[
    "build",
    "image",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "expose",
    "ports",
    "depends_on",
    "healthcheck",
    "volumes",
    "tmpfs",
    "working_dir",
    "user",
    "restart",
    "deploy",
    "profiles",
];

/// The first key of `text` outside the subset, with its line: `(key, line, where)`.
pub fn audit(text: &str) -> Result<Option<(String, usize, String)>, serde_saphyr::Error> {
    #[derive(Deserialize)]
    struct Services {
        #[serde(default)]
        services: BTreeMap<String, Keys>,
    }
    let top: Keys = serde_saphyr::from_str(text)?;
    for (key, line) in &top.0 {
        if !key.starts_with("x-") && !TOP_KEYS.contains(&key.as_str()) {
            return Ok(Some((key.clone(), *line, "the top level".into())));
        }
    }
    let services: Services = serde_saphyr::from_str(text)?;
    for (name, keys) in &services.services {
        for (key, line) in &keys.0 {
            if !key.starts_with("x-") && !SERVICE_KEYS.contains(&key.as_str()) {
                return Ok(Some((key.clone(), *line, format!("service `{name}`"))));
            }
        }
    }
    Ok(None)
}
