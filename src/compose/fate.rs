//! Every key of the Compose specification and what benchctl does with it, declared once: runs
//! it as written, maps it onto the bench, ignores it (with a note where the file's author would
//! otherwise expect an effect), lets it through only when the operator allows it, or refuses
//! it with the reason. [`super::audit`] walks a file against these tables; the README's table
//! of Compose keys is this file in prose. The key lists follow the specification's JSON schema
//! (compose-spec/compose-spec, `schema/compose-spec.json`).

/// What the operator may allow with `compose-allow` (README: Security model). Each switch
/// hands a branch something of the host's; none is on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Switch {
    /// Capabilities beyond the bench's set and the operator's `--cap-add`.
    CapAdd,
    /// `privileged: true`: every capability and device of the host.
    Privileged,
    /// `devices`, `device_cgroup_rules`, `gpus`: the host's device nodes.
    Devices,
    /// `network_mode`, `pid`, `ipc`, `uts`, `userns_mode`, `cgroup: host`: the host's
    /// namespaces.
    HostNamespaces,
    /// `security_opt`: loosening seccomp, AppArmor or `no-new-privileges`.
    SecurityOpt,
    /// A bind mount of a host path (absolute, `~`, out of the branch; the Docker socket above
    /// all) and `use_api_socket`.
    HostPaths,
    /// Networks, volumes, secrets and configs made outside the bench (`external: true`).
    External,
    /// `runtime`: another OCI runtime of the engine.
    Runtime,
}

impl Switch {
    pub const ALL: &'static [Switch] = &[
        Switch::CapAdd,
        Switch::Privileged,
        Switch::Devices,
        Switch::HostNamespaces,
        Switch::SecurityOpt,
        Switch::HostPaths,
        Switch::External,
        Switch::Runtime,
    ];

    /// The word in `compose-allow`.
    pub fn word(self) -> &'static str {
        match self {
            Switch::CapAdd => "cap-add",
            Switch::Privileged => "privileged",
            Switch::Devices => "devices",
            Switch::HostNamespaces => "host-namespaces",
            Switch::SecurityOpt => "security-opt",
            Switch::HostPaths => "host-paths",
            Switch::External => "external",
            Switch::Runtime => "runtime",
        }
    }

    /// What the switch gives a branch, in the words of a refusal.
    pub fn gives(self) -> &'static str {
        match self {
            Switch::CapAdd => "kernel capabilities beyond a web app's",
            Switch::Privileged => "every capability and device of the host (root on the host)",
            Switch::Devices => "the host's device nodes",
            Switch::HostNamespaces => "the host's namespaces (its network, processes or IPC)",
            Switch::SecurityOpt => "a looser seccomp, AppArmor or no-new-privileges profile",
            Switch::HostPaths => {
                "the host's files (a bind mount of the Docker socket is root on the host)"
            }
            Switch::External => "networks, volumes, secrets or configs shared beyond the bench",
            Switch::Runtime => "another container runtime of the engine",
        }
    }

    pub fn parse(word: &str) -> Option<Switch> {
        Switch::ALL.iter().copied().find(|s| s.word() == word)
    }
}

/// What benchctl does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Run as the specification says.
    Run,
    /// Made part of the bench in a bench's terms (the note says how).
    Map(&'static str),
    /// Accepted and ignored; the note (when not empty) is shown by `config` and the deploy.
    Ignore(&'static str),
    /// Refused unless the operator allows the switch.
    Operator(Switch),
    /// Refused, for this reason.
    Refuse(&'static str),
}

use Fate::*;

/// A table of keys.
pub type Table = &'static [(&'static str, Fate)];

/// The top level.
pub const TOP: Table = &[
    ("version", Ignore("`version` is obsolete; Compose ignores it too")),
    ("name", Run),
    ("include", Run),
    ("services", Run),
    ("models", Refuse("AI models need Docker Model Runner on the host")),
    ("networks", Map("each becomes a network of the bench")),
    ("volumes", Map("each becomes a volume of the bench")),
    ("secrets", Map("each is read from the branch's file or the bench's environment and mounted in the services that name it")),
    ("configs", Map("each is read from the branch's file, the bench's environment or `content` and mounted in the services that name it")),
];

/// A service.
pub const SERVICE: Table = &[
    ("develop", Ignore("")),
    ("deploy", Run),
    ("annotations", Ignore("`annotations` are not set on bench containers")),
    ("attach", Ignore("")),
    ("build", Run),
    ("blkio_config", Ignore("block I/O weights are the engine's defaults")),
    ("cap_add", Map("capabilities a web app has pass; others need `compose-allow = cap-add`")),
    ("cap_drop", Run),
    ("cgroup", Map("`private` runs; `host` needs `compose-allow = host-namespaces`")),
    ("cgroup_parent", Operator(Switch::HostNamespaces)),
    ("command", Run),
    ("configs", Map("mounted at `/<name>` or `target`")),
    ("container_name", Map("a name the service answers to on the bench's networks; the container keeps benchctl's name")),
    ("cpu_count", Ignore("the bench's CPU limit applies")),
    ("cpu_percent", Ignore("the bench's CPU limit applies")),
    ("cpu_shares", Ignore("the bench's CPU limit applies")),
    ("cpu_quota", Ignore("the bench's CPU limit applies")),
    ("cpu_period", Ignore("the bench's CPU limit applies")),
    ("cpu_rt_period", Ignore("the bench's CPU limit applies")),
    ("cpu_rt_runtime", Ignore("the bench's CPU limit applies")),
    ("cpus", Run),
    ("cpuset", Ignore("the bench's CPU limit applies")),
    ("credential_spec", Ignore("Windows containers only")),
    ("depends_on", Run),
    ("device_cgroup_rules", Operator(Switch::Devices)),
    ("devices", Operator(Switch::Devices)),
    ("dns", Run),
    ("dns_opt", Run),
    ("dns_search", Run),
    ("domainname", Run),
    ("entrypoint", Run),
    ("env_file", Run),
    ("label_file", Run),
    ("environment", Run),
    ("expose", Run),
    ("extends", Run),
    ("provider", Refuse("a provider runs a program on the host")),
    ("external_links", Refuse("links reach containers outside the bench")),
    ("extra_hosts", Run),
    ("gpus", Operator(Switch::Devices)),
    ("group_add", Run),
    ("healthcheck", Run),
    ("hostname", Map("the container's host name, and a name the service answers to on the bench's networks")),
    ("image", Run),
    ("init", Run),
    ("ipc", Map("`private`, `shareable` and `service:<name>` run; `host` needs `compose-allow = host-namespaces`")),
    ("isolation", Ignore("Windows containers only")),
    ("labels", Run),
    ("links", Map("each link is a name the linked service answers to on the bench's networks")),
    ("logging", Ignore("the engine's default logging driver applies (benchctl reads logs from it)")),
    ("mac_address", Ignore("addresses are the engine's")),
    ("mem_limit", Run),
    ("mem_reservation", Ignore("the bench's memory limit applies")),
    ("mem_swappiness", Ignore("the engine's default applies")),
    ("memswap_limit", Ignore("the bench's memory limit applies")),
    ("network_mode", Map("`none` and `service:<name>` run; `host` needs `compose-allow = host-namespaces`")),
    ("models", Refuse("AI models need Docker Model Runner on the host")),
    ("networks", Map("the service joins those networks of the bench, with its aliases")),
    ("oom_kill_disable", Ignore("the kernel's OOM killer stays on for benches")),
    ("oom_score_adj", Ignore("the engine's default applies")),
    ("pid", Map("`service:<name>` runs; `host` needs `compose-allow = host-namespaces`")),
    ("pids_limit", Run),
    ("platform", Run),
    ("ports", Map("container ports are published on a host port of benchctl's choosing (the web service's only)")),
    ("post_start", Ignore("lifecycle hooks are not run: use benchctl's [hooks]")),
    ("pre_stop", Ignore("lifecycle hooks are not run: use benchctl's [hooks]")),
    ("privileged", Operator(Switch::Privileged)),
    ("profiles", Run),
    ("pull_policy", Ignore("")),
    ("pull_refresh_after", Ignore("")),
    ("read_only", Run),
    ("restart", Run),
    ("runtime", Operator(Switch::Runtime)),
    ("scale", Run),
    ("security_opt", Operator(Switch::SecurityOpt)),
    ("shm_size", Run),
    ("secrets", Map("mounted at `/run/secrets/<name>` or `target`")),
    ("sysctls", Run),
    ("stdin_open", Run),
    ("stop_grace_period", Run),
    ("stop_signal", Run),
    ("storage_opt", Ignore("the engine's storage defaults apply")),
    ("tmpfs", Run),
    ("tty", Run),
    ("ulimits", Run),
    ("use_api_socket", Operator(Switch::HostPaths)),
    ("user", Run),
    ("uts", Map("`host` needs `compose-allow = host-namespaces`")),
    ("userns_mode", Map("`host` needs `compose-allow = host-namespaces`")),
    ("volumes", Map("named volumes are the bench's; files of the branch are copied into the bench; host paths need `compose-allow = host-paths`")),
    ("volumes_from", Map("`<service>` of the bench runs; `container:<name>` is refused")),
    ("working_dir", Run),
];

/// A service's `build` in its long form.
pub const BUILD: Table = &[
    ("context", Run),
    ("dockerfile", Run),
    (
        "dockerfile_inline",
        Refuse("benchctl builds from a Dockerfile in the branch: commit it as a file"),
    ),
    (
        "entitlements",
        Refuse("build entitlements give a build the host's network or privileges"),
    ),
    ("args", Run),
    (
        "ssh",
        Refuse(
            "an SSH agent would be handed to the branch's build: use the operator's build secrets",
        ),
    ),
    ("labels", Run),
    ("cache_from", Ignore("benchctl's builder caches by itself")),
    ("cache_to", Ignore("benchctl's builder caches by itself")),
    ("no_cache", Ignore("")),
    (
        "additional_contexts",
        Refuse("benchctl builds from one context in the branch"),
    ),
    ("network", Ignore("the build's network is the operator's")),
    ("provenance", Ignore("")),
    ("sbom", Ignore("")),
    ("pull", Ignore("")),
    ("target", Run),
    ("shm_size", Ignore("")),
    (
        "extra_hosts",
        Ignore("the build's network is the operator's"),
    ),
    ("isolation", Ignore("Windows containers only")),
    (
        "privileged",
        Refuse("a privileged build is root on the host"),
    ),
    (
        "secrets",
        Ignore("build secrets are the operator's (`build-secrets`)"),
    ),
    ("tags", Ignore("benchctl names the images it builds")),
    ("ulimits", Ignore("")),
    (
        "platforms",
        Ignore("benchctl builds for the engine's platform"),
    ),
];

/// A service's `deploy`.
pub const DEPLOY: Table = &[
    ("mode", Run),
    ("endpoint_mode", Ignore("")),
    ("replicas", Run),
    (
        "labels",
        Ignore("labels of a swarm service, not of its containers"),
    ),
    ("rollback_config", Ignore("")),
    (
        "update_config",
        Ignore("benchctl replaces the web service start-first"),
    ),
    ("resources", Run),
    ("restart_policy", Run),
    ("placement", Ignore("where benches run is the operator's")),
];

/// `deploy.resources`.
pub const RESOURCES: Table = &[("limits", Run), ("reservations", Run)];

/// `deploy.resources.limits` / `reservations`.
pub const RESOURCE: Table = &[
    ("cpus", Run),
    ("memory", Run),
    ("pids", Run),
    ("devices", Operator(Switch::Devices)),
    ("generic_resources", Ignore("")),
];

/// A service's `healthcheck`.
pub const HEALTHCHECK: Table = &[
    ("disable", Run),
    ("interval", Run),
    ("retries", Run),
    ("test", Run),
    ("timeout", Run),
    ("start_period", Run),
    (
        "start_interval",
        Ignore("the engine's API (1.41) has no start interval"),
    ),
];

/// A top-level network.
pub const NETWORK: Table = &[
    ("name", Ignore("benchctl names the bench's networks")),
    (
        "driver",
        Ignore("a bench's networks are bridges (overlays on a swarm)"),
    ),
    ("driver_opts", Ignore("")),
    ("ipam", Ignore("addresses are the engine's")),
    ("external", Operator(Switch::External)),
    ("internal", Run),
    ("enable_ipv4", Ignore("")),
    ("enable_ipv6", Ignore("")),
    ("attachable", Ignore("")),
    ("labels", Run),
];

/// A service's entry under `networks` in the long form.
pub const SERVICE_NETWORK: Table = &[
    ("aliases", Run),
    ("interface_name", Ignore("")),
    ("ipv4_address", Ignore("addresses are the engine's")),
    ("ipv6_address", Ignore("addresses are the engine's")),
    ("link_local_ips", Ignore("addresses are the engine's")),
    ("mac_address", Ignore("addresses are the engine's")),
    ("driver_opts", Ignore("")),
    ("priority", Ignore("")),
    ("gw_priority", Ignore("")),
];

/// An entry of the top-level `include` in its long form.
pub const INCLUDE: Table = &[
    ("path", Run),
    ("project_directory", Run),
    (
        "env_file",
        Ignore("the bench's environment and the main file's `.env` interpolate every file"),
    ),
];

/// A service's `extends` in its long form.
pub const EXTENDS: Table = &[("service", Run), ("file", Run)];

/// A top-level volume.
pub const VOLUME: Table = &[
    ("name", Ignore("benchctl names the bench's volumes")),
    ("driver", Operator(Switch::External)),
    ("driver_opts", Operator(Switch::HostPaths)),
    ("external", Operator(Switch::External)),
    ("labels", Run),
];

/// A top-level secret.
pub const SECRET: Table = &[
    ("name", Ignore("benchctl names the bench's secrets")),
    ("environment", Run),
    ("file", Run),
    ("external", Operator(Switch::External)),
    ("labels", Ignore("")),
    ("driver", Refuse("secret drivers reach outside the bench")),
    (
        "driver_opts",
        Refuse("secret drivers reach outside the bench"),
    ),
    ("template_driver", Refuse("templates are not rendered")),
];

/// A top-level config.
pub const CONFIG: Table = &[
    ("name", Ignore("benchctl names the bench's configs")),
    ("content", Run),
    ("environment", Run),
    ("file", Run),
    ("external", Operator(Switch::External)),
    ("labels", Ignore("")),
    ("template_driver", Refuse("templates are not rendered")),
];

/// Every table, top level first.
pub const ALL: &[Table] = &[
    TOP,
    INCLUDE,
    SERVICE,
    EXTENDS,
    BUILD,
    DEPLOY,
    RESOURCES,
    RESOURCE,
    HEALTHCHECK,
    NETWORK,
    SERVICE_NETWORK,
    VOLUME,
    SECRET,
    CONFIG,
];

/// The fate of `key` in `table`; `None` for a key the specification does not have.
pub fn of(table: Table, key: &str) -> Option<Fate> {
    table.iter().find(|(k, _)| *k == key).map(|(_, f)| *f)
}

/// The label prefixes only benchctl, the proxy and the engine write.
pub const RESERVED_LABELS: &[&str] = &["benchctl.", "traefik.", "com.docker."];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_declared_once_and_switches_read_back() {
        for t in ALL {
            let mut keys: Vec<&str> = t.iter().map(|(k, _)| *k).collect();
            let n = keys.len();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), n, "a key declared twice");
        }
        for s in Switch::ALL {
            assert_eq!(Switch::parse(s.word()), Some(*s));
        }
        assert_eq!(
            of(SERVICE, "container_name").map(|f| matches!(f, Map(_))),
            Some(true)
        );
        assert_eq!(of(SERVICE, "contianer_name"), None);
    }

    #[test]
    fn the_readme_lists_every_key_with_its_fate() {
        let readme = include_str!("../../README.md");
        for t in ALL {
            for (k, f) in *t {
                let word = match f {
                    Run => "run",
                    Map(_) => "mapped",
                    Ignore(_) => "ignored",
                    Operator(_) => "operator",
                    Refuse(_) => "refused",
                };
                let row = format!("{k}` | {word} |");
                assert!(
                    readme.contains(&row),
                    "README's Compose table lacks `{row}`"
                );
            }
        }
    }
}
