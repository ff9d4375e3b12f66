//! A Compose file as written: the keys benchctl reads, as serde types over `serde-saphyr`
//! (anchors and `<<` merge keys resolved by the parser). Scalars are kept as text, since
//! interpolation (`${VAR}`) comes before any value is typed; the forms the specification allows
//! (a command as a string or a list, `environment` as a map or a list, short and long `ports`,
//! `volumes`, `depends_on`, `build`, `networks`, `secrets`) are untagged enums. Which keys may
//! be there at all is [`super::audit`]'s check against [`super::fate`], made before these types
//! read the file: keys they leave out are the ones benchctl ignores.

use serde::de::{Deserializer, Visitor};
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
    #[serde(default)]
    pub networks: BTreeMap<String, Option<TopNetwork>>,
    #[serde(default)]
    pub secrets: BTreeMap<String, TopFile>,
    #[serde(default)]
    pub configs: BTreeMap<String, TopFile>,
    #[serde(rename = "x-benchctl", default)]
    pub x_benchctl: Option<XBenchctl>,
}

/// `x-benchctl:` in the file: which service is the bench.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XBenchctl {
    pub web: Option<Text>,
}

/// A top-level volume: benchctl makes it (labelled).
#[derive(Debug, Default, Deserialize)]
pub struct TopVolume {
    #[serde(default)]
    pub labels: Option<StringOrMap>,
    pub external: Option<Text>,
    pub driver: Option<Text>,
}

/// A top-level network: a network of the bench.
#[derive(Debug, Default, Deserialize)]
pub struct TopNetwork {
    pub internal: Option<Text>,
    pub external: Option<Text>,
    #[serde(default)]
    pub labels: Option<StringOrMap>,
}

/// A top-level secret or config: from a file of the branch, a variable of the bench's
/// environment, or (configs) inline `content`.
#[derive(Debug, Default, Deserialize)]
pub struct TopFile {
    pub file: Option<Text>,
    pub environment: Option<Text>,
    pub content: Option<Text>,
    pub external: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Service {
    pub build: Option<Build>,
    pub image: Option<Text>,
    pub command: Option<Command>,
    pub entrypoint: Option<Command>,
    pub environment: Option<Environment>,
    pub env_file: Option<EnvFiles>,
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
    pub container_name: Option<Text>,
    pub hostname: Option<Text>,
    pub domainname: Option<Text>,
    pub labels: Option<StringOrMap>,
    pub label_file: Option<OneOrMany>,
    pub stop_signal: Option<Text>,
    pub stop_grace_period: Option<Text>,
    pub init: Option<Text>,
    pub tty: Option<Text>,
    pub stdin_open: Option<Text>,
    pub read_only: Option<Text>,
    pub shm_size: Option<Text>,
    pub ulimits: Option<BTreeMap<String, Ulimit>>,
    pub sysctls: Option<StringOrMap>,
    pub platform: Option<Text>,
    #[serde(default)]
    pub group_add: Vec<Text>,
    pub extra_hosts: Option<StringOrMap>,
    pub dns: Option<OneOrMany>,
    #[serde(default)]
    pub dns_opt: Vec<Text>,
    pub dns_search: Option<OneOrMany>,
    #[serde(default)]
    pub cap_add: Vec<Text>,
    #[serde(default)]
    pub cap_drop: Vec<Text>,
    pub cpus: Option<Text>,
    pub mem_limit: Option<Text>,
    pub pids_limit: Option<Text>,
    pub scale: Option<Text>,
    pub networks: Option<ServiceNetworks>,
    #[serde(default)]
    pub secrets: Vec<FileRef>,
    #[serde(default)]
    pub configs: Vec<FileRef>,
    #[serde(default)]
    pub links: Vec<Text>,
    #[serde(default)]
    pub volumes_from: Vec<Text>,
    pub network_mode: Option<Text>,
    pub pid: Option<Text>,
    pub ipc: Option<Text>,
    pub uts: Option<Text>,
    pub userns_mode: Option<Text>,
    pub cgroup: Option<Text>,
    pub privileged: Option<Text>,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub security_opt: Vec<Text>,
    pub runtime: Option<Text>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Build {
    Context(Text),
    Long(BuildLong),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BuildLong {
    pub context: Option<Text>,
    pub dockerfile: Option<Text>,
    pub args: Option<Environment>,
    pub target: Option<Text>,
    pub labels: Option<StringOrMap>,
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

/// `env_file`: a path, or a list of paths and `{path, required}` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvFiles {
    One(Text),
    Many(Vec<EnvFile>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnvFile {
    Path(Text),
    Long {
        path: Text,
        required: Option<Text>,
        format: Option<Text>,
    },
}

impl EnvFiles {
    /// Each file with whether it must exist.
    pub fn into_vec(self) -> Vec<(Text, Option<Text>)> {
        match self {
            EnvFiles::One(p) => vec![(p, None)],
            EnvFiles::Many(v) => v
                .into_iter()
                .map(|f| match f {
                    EnvFile::Path(p) => (p, None),
                    EnvFile::Long { path, required, .. } => (path, required),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrMap {
    List(Vec<Text>),
    Map(BTreeMap<String, Option<Text>>),
}

/// A ulimit: one number (soft and hard), or both.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ulimit {
    One(Text),
    Both { soft: Text, hard: Text },
}

/// A service's `networks`: names, or names with their aliases.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ServiceNetworks {
    List(Vec<Text>),
    Map(BTreeMap<String, Option<ServiceNetwork>>),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceNetwork {
    #[serde(default)]
    pub aliases: Vec<Text>,
}

/// A service's secret or config: its name, or `{source, target, uid, gid, mode}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileRef {
    Short(Text),
    Long(FileRefLong),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRefLong {
    pub source: Text,
    pub target: Option<Text>,
    pub uid: Option<Text>,
    pub gid: Option<Text>,
    pub mode: Option<Text>,
}

/// A device: `/dev/x[:/dev/y[:rwm]]` or the long form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Device {
    Short(Text),
    Long(BTreeMap<String, Option<Text>>),
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
    pub name: Option<Text>,
    pub app_protocol: Option<Text>,
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
    Long(Box<VolumeLong>),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeLong {
    #[serde(rename = "type")]
    pub kind: Text,
    pub source: Option<Text>,
    pub target: Text,
    pub read_only: Option<Text>,
    pub consistency: Option<Text>,
    pub bind: Option<BTreeMap<String, Option<Text>>>,
    pub volume: Option<BTreeMap<String, Option<Text>>>,
    pub tmpfs: Option<BTreeMap<String, Option<Text>>>,
    pub image: Option<BTreeMap<String, Option<Text>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Deploy {
    pub mode: Option<Text>,
    pub replicas: Option<Text>,
    pub resources: Option<Resources>,
    pub restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RestartPolicy {
    pub condition: Option<Text>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resources {
    pub limits: Option<Limits>,
    pub reservations: Option<Limits>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Limits {
    pub cpus: Option<Text>,
    pub memory: Option<Text>,
    pub pids: Option<Text>,
}
