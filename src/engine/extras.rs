//! What a Compose service's container has beyond a bench's common shape: the keys the file runs
//! as written (host name, stop signal, init, ulimits, DNS, ...), what the operator allowed
//! (privileges, devices, host paths), more networks, and files copied in before it starts.
//! Engine-neutral: each backend says which of these it runs and refuses the rest by name.

use std::path::PathBuf;
use std::time::Duration;

/// A namespace a container shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Namespace {
    Host,
    /// Another container of the bench, by its name.
    Container(String),
    /// The engine's own word (`none`, `private`, `shareable`).
    Word(String),
}

/// The container's settings besides its command, image, limits and mounts.
#[derive(Debug, Clone, Default, PartialEq, Hash)]
pub struct ContainerExtras {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<Duration>,
    pub init: Option<bool>,
    pub tty: bool,
    pub open_stdin: bool,
    pub read_only: bool,
    pub shm_size: Option<i64>,
    /// `(name, soft, hard)`.
    pub ulimits: Vec<(String, i64, i64)>,
    pub sysctls: Vec<(String, String)>,
    pub platform: Option<String>,
    pub group_add: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    pub cap_drop: Vec<String>,
    pub network_mode: Option<Namespace>,
    pub pid: Option<Namespace>,
    pub ipc: Option<Namespace>,
    pub uts_host: bool,
    pub userns_host: bool,
    pub cgroup_host: bool,
    /// Containers of the bench whose volumes this one mounts too.
    pub volumes_from: Vec<String>,
    pub privileged: bool,
    pub devices: Vec<String>,
    pub security_opt: Vec<String>,
    pub runtime: Option<String>,
    /// `source:target[:ro]` host paths.
    pub binds: Vec<String>,
    pub memory_reservation: Option<i64>,
    /// Networks of the bench joined besides the first, each with the names answered to there.
    pub networks: Vec<(String, Vec<String>)>,
}

impl ContainerExtras {
    /// The keys a backend that runs none of these would have to refuse, by their Compose names.
    pub fn asked(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |set: bool, key: &'static str| {
            if set {
                out.push(key)
            }
        };
        check(self.hostname.is_some(), "hostname");
        check(self.domainname.is_some(), "domainname");
        check(self.init.is_some(), "init");
        check(self.tty || self.open_stdin, "tty/stdin_open");
        check(self.shm_size.is_some(), "shm_size");
        check(!self.ulimits.is_empty(), "ulimits");
        check(!self.sysctls.is_empty(), "sysctls");
        check(!self.extra_hosts.is_empty(), "extra_hosts");
        check(!self.dns.is_empty() || !self.dns_search.is_empty(), "dns");
        check(self.network_mode.is_some(), "network_mode");
        check(self.pid.is_some() || self.ipc.is_some(), "pid/ipc");
        check(
            self.uts_host || self.userns_host || self.cgroup_host,
            "uts/userns_mode/cgroup",
        );
        check(!self.volumes_from.is_empty(), "volumes_from");
        check(self.privileged, "privileged");
        check(!self.devices.is_empty(), "devices");
        check(!self.security_opt.is_empty(), "security_opt");
        check(self.runtime.is_some(), "runtime");
        check(!self.binds.is_empty(), "volumes (host paths)");
        out
    }
}

/// Where a copied file or directory's content is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CopyContent {
    /// A file or directory on the machine that runs benchctl (the branch's checkout).
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// Files put into a container before it starts: a copy, so a write in the container changes
/// only the bench.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CopySpec {
    /// The absolute path in the container.
    pub target: String,
    pub content: CopyContent,
    /// The files' mode (directories keep their own); `None`: as in the branch.
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}
