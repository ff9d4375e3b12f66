//! Every setting a config file may hold, declared once: its key, type, default, help, flag and
//! environment variable, and who may set it. The file format, the merge of layers with their
//! origins, `benchctl config`'s rows and the clap flags of the bench settings all come from
//! this table.

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A TCP port (1-65535).
    Port,
    /// Whole seconds.
    Seconds,
    /// A size such as `512m` (written as a string).
    Size,
    /// A number of CPU cores (a float).
    Cpus,
    /// A whole number.
    Count,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `NAME = "value"` entries (a table in a file, repeatable `NAME=VALUE` flags).
    Entries,
}

/// Who may set a key besides flags and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// The operator's `--config` file and the branch's `benchctl.toml`.
    Any,
    /// Only the operator's `--config` file: what reaches past the branch's own bench (where
    /// benches run, the Tracker field, the host name behind the shared proxy, the ceilings).
    Operator,
}

/// One setting.
#[derive(Debug)]
pub struct Key {
    /// The key in a config file; `limits.memory` is `memory` under `[limits]`.
    pub name: &'static str,
    pub kind: Kind,
    /// The default, as text (`None`: unset unless someone sets it).
    pub default: Option<&'static str>,
    /// What `benchctl config` shows while it is unset.
    pub unset: &'static str,
    /// The flag's help.
    pub help: &'static str,
    /// The flag (without `--`), when it has one.
    pub flag: Option<&'static str>,
    pub short: Option<char>,
    pub value_name: &'static str,
    /// The environment variable the flag reads.
    pub env: Option<&'static str>,
    pub files: Files,
    /// Whether the flag is declared with the bench settings (`deploy`, `serve`, `config`);
    /// the others belong to argument groups shared with more commands.
    pub bench_flag: bool,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        default: None,
        unset: "",
        help: "",
        flag: None,
        short: None,
        value_name: "VALUE",
        env: None,
        files: Files::Any,
        bench_flag: true,
    }
}

pub const DOCKERFILE: Key = Key {
    default: Some("Dockerfile"),
    help: "Dockerfile path inside the repository (default `Dockerfile`)",
    flag: Some("dockerfile"),
    value_name: "PATH",
    ..key("dockerfile", Kind::Text)
};
pub const TEMPLATE: Key = Key {
    unset: "- (only for a branch without a Dockerfile)",
    help: "Build with this Dockerfile template instead of the branch's Dockerfile (without it, \
           a branch that has no Dockerfile gets the template its files suggest; `benchctl \
           templates`)",
    flag: Some("template"),
    value_name: "NAME",
    ..key("template", Kind::Text)
};
pub const TARGET: Key = Key {
    unset: "- (the last stage)",
    help: "The Dockerfile stage to build",
    flag: Some("target"),
    value_name: "STAGE",
    ..key("target", Kind::Text)
};
pub const PORT: Key = Key {
    unset: "- (the image's EXPOSEd port)",
    help: "Container port to publish (default: the image's single EXPOSEd port)",
    flag: Some("port"),
    value_name: "PORT",
    ..key("port", Kind::Port)
};
pub const HEALTH_PATH: Key = Key {
    default: Some("/"),
    help: "Path the readiness probe asks (default `/`: any answer counts; another path must \
           answer 2xx or 3xx)",
    flag: Some("health-path"),
    value_name: "PATH",
    ..key("health-path", Kind::Text)
};
pub const READY_TIMEOUT: Key = Key {
    default: Some("60"),
    help: "Seconds to wait for the bench to answer (default 60)",
    flag: Some("ready-timeout"),
    value_name: "SECONDS",
    ..key("ready-timeout", Kind::Seconds)
};
pub const MEMORY: Key = Key {
    default: Some("512m"),
    help: "Memory limit of the bench (bytes, or with k/m/g suffix; default 512m)",
    flag: Some("memory"),
    value_name: "SIZE",
    ..key("limits.memory", Kind::Size)
};
pub const CPUS: Key = Key {
    default: Some("1"),
    help: "CPU limit of the bench (cores; default 1)",
    flag: Some("cpus"),
    value_name: "CPUS",
    ..key("limits.cpus", Kind::Cpus)
};
pub const PIDS: Key = Key {
    default: Some("256"),
    help: "Maximum number of processes in the bench (default 256)",
    flag: Some("pids-limit"),
    value_name: "N",
    ..key("limits.pids", Kind::Count)
};
pub const URL_TEMPLATE: Key = Key {
    unset: "- (http://<public host>:<published port>/)",
    help: "The bench's address, e.g. `https://{issue}.bench.example.com` (placeholders {issue}, \
           {branch}, {commit}, {port}; each a DNS-safe slug, host labels at most 63 \
           characters)",
    flag: Some("url-template"),
    value_name: "TEMPLATE",
    env: Some(crate::env::URL_TEMPLATE),
    files: Files::Operator,
    ..key("url-template", Kind::Text)
};
pub const ISSUE_PATTERN: Key = Key {
    default: Some(crate::naming::DEFAULT_ISSUE_PATTERN),
    help: "Regex that finds the issue key in the branch name (its first group, or the whole \
           match; default `(?:^|[^A-Za-z])([A-Za-z]+-[0-9]+)`)",
    flag: Some("issue-pattern"),
    value_name: "REGEX",
    env: Some(crate::env::ISSUE_PATTERN),
    bench_flag: false,
    files: Files::Operator,
    ..key("issue-pattern", Kind::Text)
};
pub const FIELD: Key = Key {
    default: Some("benchLink"),
    help: "Tracker field that holds the bench address (a local field's full key \
           `<hex>--benchLink` works)",
    flag: Some("field"),
    value_name: "KEY",
    env: Some(crate::env::BENCH_FIELD),
    bench_flag: false,
    files: Files::Operator,
    ..key("field", Kind::Text)
};
pub const BUILD_ARGS: Key = Key {
    help: "A build argument (repeatable)",
    flag: Some("build-arg"),
    value_name: "NAME=VALUE",
    ..key("build-args", Kind::Entries)
};
pub const BUILD_SECRETS: Key = Key {
    unset: "-",
    help:
        "Build secrets of `RUN --mount=type=secret,id=ID` steps (BuildKit): `ID = \"VARIABLE\"`, \
           a variable of benchctl's environment that --build-secret-vars allows",
    bench_flag: false,
    ..key("build-secrets", Kind::Entries)
};
pub const BUILD_SECRET_VARS: Key = Key {
    unset: "- (a branch's benchctl.toml may name no build secret)",
    help: "Variables of benchctl's environment a branch's benchctl.toml may name as build \
           secrets ([build-secrets] ID = \"VARIABLE\"; comma-separated)",
    flag: Some("build-secret-vars"),
    value_name: "NAMES",
    env: Some(crate::env::BUILD_SECRET_VARS),
    files: Files::Operator,
    ..key("build-secret-vars", Kind::Text)
};
pub const ENV: Key = Key {
    help: "A variable of the bench's environment: `NAME=VALUE`, or `NAME` to pass benchctl's own \
           value (never shown). Repeatable",
    flag: Some("env"),
    short: Some('e'),
    value_name: "NAME[=VALUE]",
    ..key("env", Kind::Entries)
};
pub const BACKEND: Key = Key {
    default: Some("docker"),
    help: "Where benches run: `docker` (containers on the engine) or `swarm` (one-replica \
           services on the swarm the engine manages; README: Swarm)",
    flag: Some("backend"),
    value_name: "BACKEND",
    env: Some(crate::env::BACKEND),
    files: Files::Operator,
    bench_flag: false,
    ..key("backend", Kind::Choice(&["docker", "swarm"]))
};
pub const PUBLISH_MODE: Key = Key {
    default: Some("ingress"),
    help: "How a swarm bench publishes its port: `ingress` (the routing mesh, default; \
           reachable on every node) or `host` (on the node the bench runs on)",
    flag: Some("publish-mode"),
    value_name: "MODE",
    env: Some(crate::env::PUBLISH_MODE),
    files: Files::Operator,
    bench_flag: false,
    ..key("publish-mode", Kind::Choice(&["ingress", "host"]))
};
pub const REGISTRY: Key = Key {
    unset: "-",
    help: "Registry the swarm backend pushes images to, e.g. `registry.example.com:5000` \
           (credentials: BENCHCTL_REGISTRY_USER and BENCHCTL_REGISTRY_PASSWORD, else `docker \
           login`)",
    flag: Some("registry"),
    value_name: "HOST",
    env: Some(crate::env::REGISTRY),
    files: Files::Operator,
    bench_flag: false,
    ..key("registry", Kind::Text)
};

pub const COMPOSE: Key = Key {
    unset: "- (compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml when the \
            branch has one)",
    help: "The branch's Compose file of a multi-service bench (default: the first of \
           compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml at its root)",
    flag: Some("compose"),
    value_name: "PATH",
    ..key("compose", Kind::Text)
};
pub const SERVICE: Key = Key {
    unset: "- (the file's x-benchctl.web, else the only service publishing a port)",
    help: "The Compose service that is the bench (its address is linked)",
    flag: Some("service"),
    value_name: "NAME",
    ..key("service", Kind::Text)
};
pub const PROFILES: Key = Key {
    unset: "- (only services without a profile)",
    help: "Compose profiles whose services run too (comma-separated)",
    flag: Some("profiles"),
    value_name: "NAMES",
    env: Some(crate::env::PROFILES),
    files: Files::Operator,
    ..key("profiles", Kind::Text)
};
pub const COMPOSE_ALLOW: Key = Key {
    unset: "- (nothing of the host's)",
    help: "What a branch's Compose file may have of the host's, comma-separated: cap-add, \
           privileged, devices, host-namespaces, security-opt, host-paths, external, runtime \
           (README: Security model says what each gives a branch)",
    flag: Some("compose-allow"),
    value_name: "SWITCHES",
    env: Some(crate::env::COMPOSE_ALLOW),
    files: Files::Operator,
    ..key("compose-allow", Kind::Text)
};
pub const MAX_HOOK_TIMEOUT: Key = Key {
    default: Some("600"),
    help: "Ceiling of a hook's timeout a branch may ask for (seconds; default 600); a teardown \
           hook runs at most this long at teardown, whatever its bench was deployed with",
    flag: Some("max-hook-timeout"),
    value_name: "SECONDS",
    env: Some(crate::env::MAX_HOOK_TIMEOUT),
    files: Files::Operator,
    ..key("max-hook-timeout", Kind::Seconds)
};
pub const MAX_REPLICAS: Key = Key {
    default: Some("3"),
    help: "Containers a service of a branch's Compose file may ask for (`deploy.replicas`, \
           `scale`; default 3; the web service runs one); a bench has 12 containers at most",
    flag: Some("max-replicas"),
    value_name: "N",
    env: Some(crate::env::MAX_REPLICAS),
    files: Files::Operator,
    ..key("max-replicas", Kind::Count)
};
pub const MAX_MEMORY: Key = Key {
    default: Some("512m"),
    help: "Ceiling of the memory limit a branch's benchctl.toml may ask for (default 512m, the \
           default limit)",
    flag: Some("max-memory"),
    value_name: "SIZE",
    env: Some(crate::env::MAX_MEMORY),
    files: Files::Operator,
    ..key("max-memory", Kind::Size)
};
pub const MAX_RUNNING: Key = Key {
    unset: "- (no cap)",
    help: "Benches running at once on this engine at most: a deploy or wake past it first puts \
           the least recently used unpinned bench to sleep (README: Sleeping benches)",
    flag: Some("max-running"),
    value_name: "N",
    env: Some(crate::env::MAX_RUNNING),
    files: Files::Operator,
    ..key("max-running", Kind::Count)
};
pub const MAX_MEMORY_TOTAL: Key = Key {
    unset: "- (no cap)",
    help: "Memory the running benches of this engine may reserve together (their limits): a \
           deploy or wake past it first puts the least recently used unpinned bench to sleep",
    flag: Some("max-memory-total"),
    value_name: "SIZE",
    env: Some(crate::env::MAX_MEMORY_TOTAL),
    files: Files::Operator,
    ..key("max-memory-total", Kind::Size)
};
pub const MAX_CPUS: Key = Key {
    default: Some("1"),
    help: "Ceiling of the CPU limit a branch's benchctl.toml may ask for (cores; default 1)",
    flag: Some("max-cpus"),
    value_name: "CPUS",
    env: Some(crate::env::MAX_CPUS),
    files: Files::Operator,
    ..key("max-cpus", Kind::Cpus)
};
pub const MAX_PIDS: Key = Key {
    default: Some("256"),
    help: "Ceiling of the process limit a branch's benchctl.toml may ask for (default 256)",
    flag: Some("max-pids"),
    value_name: "N",
    env: Some(crate::env::MAX_PIDS),
    files: Files::Operator,
    ..key("max-pids", Kind::Count)
};
pub const MAX_READY_TIMEOUT: Key = Key {
    default: Some("600"),
    help: "Ceiling of the ready timeout a branch's benchctl.toml may ask for (seconds; default \
           600)",
    flag: Some("max-ready-timeout"),
    value_name: "SECONDS",
    env: Some(crate::env::MAX_READY_TIMEOUT),
    files: Files::Operator,
    ..key("max-ready-timeout", Kind::Seconds)
};

/// A hook's keys (`[hooks.<name>]` in a config file; no flags): the service it runs in, its
/// command, its time limit, and whether it runs in the service's running container (`exec`)
/// or in a one-off container of the service (`one-off`).
const fn hook_key(name: &'static str, kind: Kind, help: &'static str) -> Key {
    Key {
        unset: "-",
        help,
        bench_flag: false,
        ..key(name, kind)
    }
}
pub const HOOK_SEED_SERVICE: Key = hook_key(
    "hooks.seed.service",
    Kind::Text,
    "The service the seed hook runs in (once in a bench's life, after its other services are up)",
);
pub const HOOK_SEED_COMMAND: Key = hook_key(
    "hooks.seed.command",
    Kind::Text,
    "The seed hook's command (split as Compose splits a string command)",
);
pub const HOOK_SEED_TIMEOUT: Key = hook_key(
    "hooks.seed.timeout",
    Kind::Seconds,
    "Seconds the seed hook may run (default 300)",
);
pub const HOOK_SEED_RUN: Key = hook_key(
    "hooks.seed.run",
    Kind::Choice(&["exec", "one-off"]),
    "How the seed hook runs: `exec` in the service's running container (default), `one-off` \
     in a container of its own",
);
pub const HOOK_RELEASE_SERVICE: Key = hook_key(
    "hooks.release.service",
    Kind::Text,
    "The service the release hook runs in (on every deploy, before the new web service starts)",
);
pub const HOOK_RELEASE_COMMAND: Key = hook_key(
    "hooks.release.command",
    Kind::Text,
    "The release hook's command (split as Compose splits a string command)",
);
pub const HOOK_RELEASE_TIMEOUT: Key = hook_key(
    "hooks.release.timeout",
    Kind::Seconds,
    "Seconds the release hook may run (default 300)",
);
pub const HOOK_RELEASE_RUN: Key = hook_key(
    "hooks.release.run",
    Kind::Choice(&["exec", "one-off"]),
    "How the release hook runs: `exec` in the service's running container (default), `one-off` \
     in a container of its own",
);
pub const HOOK_TEARDOWN_SERVICE: Key = hook_key(
    "hooks.teardown.service",
    Kind::Text,
    "The service the teardown hook runs in (before the bench is removed)",
);
pub const HOOK_TEARDOWN_COMMAND: Key = hook_key(
    "hooks.teardown.command",
    Kind::Text,
    "The teardown hook's command (split as Compose splits a string command)",
);
pub const HOOK_TEARDOWN_TIMEOUT: Key = hook_key(
    "hooks.teardown.timeout",
    Kind::Seconds,
    "Seconds the teardown hook may run (default 300)",
);
pub const HOOK_TEARDOWN_RUN: Key = hook_key(
    "hooks.teardown.run",
    Kind::Choice(&["exec", "one-off"]),
    "How the teardown hook runs: `exec` in the service's running container (default), `one-off` \
     in a container of its own",
);

/// The hooks' keys, by hook: `(name, service, command, timeout, run)`.
pub type HookKeys = (
    &'static str,
    &'static Key,
    &'static Key,
    &'static Key,
    &'static Key,
);
pub const HOOKS: &[HookKeys] = &[
    (
        "seed",
        &HOOK_SEED_SERVICE,
        &HOOK_SEED_COMMAND,
        &HOOK_SEED_TIMEOUT,
        &HOOK_SEED_RUN,
    ),
    (
        "release",
        &HOOK_RELEASE_SERVICE,
        &HOOK_RELEASE_COMMAND,
        &HOOK_RELEASE_TIMEOUT,
        &HOOK_RELEASE_RUN,
    ),
    (
        "teardown",
        &HOOK_TEARDOWN_SERVICE,
        &HOOK_TEARDOWN_COMMAND,
        &HOOK_TEARDOWN_TIMEOUT,
        &HOOK_TEARDOWN_RUN,
    ),
];

/// Every key, in the order `benchctl config` shows them.
pub const KEYS: &[&Key] = &[
    &DOCKERFILE,
    &TEMPLATE,
    &TARGET,
    &PORT,
    &HEALTH_PATH,
    &READY_TIMEOUT,
    &MEMORY,
    &CPUS,
    &PIDS,
    &URL_TEMPLATE,
    &ISSUE_PATTERN,
    &FIELD,
    &BUILD_ARGS,
    &BUILD_SECRETS,
    &BUILD_SECRET_VARS,
    &ENV,
    &COMPOSE,
    &SERVICE,
    &PROFILES,
    &COMPOSE_ALLOW,
    &MAX_REPLICAS,
    &MAX_HOOK_TIMEOUT,
    &HOOK_SEED_SERVICE,
    &HOOK_SEED_COMMAND,
    &HOOK_SEED_TIMEOUT,
    &HOOK_SEED_RUN,
    &HOOK_RELEASE_SERVICE,
    &HOOK_RELEASE_COMMAND,
    &HOOK_RELEASE_TIMEOUT,
    &HOOK_RELEASE_RUN,
    &HOOK_TEARDOWN_SERVICE,
    &HOOK_TEARDOWN_COMMAND,
    &HOOK_TEARDOWN_TIMEOUT,
    &HOOK_TEARDOWN_RUN,
    &MAX_MEMORY,
    &MAX_CPUS,
    &MAX_PIDS,
    &MAX_READY_TIMEOUT,
    &MAX_RUNNING,
    &MAX_MEMORY_TOTAL,
    &BACKEND,
    &PUBLISH_MODE,
    &REGISTRY,
];

/// The keys of where benches run (shown by `config` after the bench settings).
pub const ENGINE_KEYS: &[&Key] = &[&BACKEND, &PUBLISH_MODE, &REGISTRY];

/// The ceilings a branch's values of a key must stay under: `(key, its ceiling)`.
pub const CEILINGS: &[(&Key, &Key)] = &[
    (&MEMORY, &MAX_MEMORY),
    (&CPUS, &MAX_CPUS),
    (&PIDS, &MAX_PIDS),
    (&READY_TIMEOUT, &MAX_READY_TIMEOUT),
];

/// Whether `k` is one of where benches run (shown apart by `config`).
pub fn is_engine_key(k: &Key) -> bool {
    ENGINE_KEYS.iter().any(|e| e.name == k.name)
}

/// The key named `name` in a file (`limits.memory`, `env`).
pub fn by_name(name: &str) -> Option<&'static Key> {
    KEYS.iter().copied().find(|k| k.name == name)
}

impl Key {
    /// The id of its clap argument.
    pub fn id(&self) -> &'static str {
        self.flag.unwrap_or(self.name)
    }

    /// The words a `Choice` key takes (for its flag's value parser).
    pub const fn choices(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Choice(words) => words,
            _ => &[],
        }
    }

    /// The flag as people type it.
    pub fn flag_text(&self) -> String {
        format!("--{}", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_declared_once_with_a_unique_flag() {
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), KEYS.len());
        let mut flags: Vec<&str> = KEYS.iter().filter_map(|k| k.flag).collect();
        let n = flags.len();
        flags.sort();
        flags.dedup();
        assert_eq!(flags.len(), n);
        for k in KEYS {
            assert!(!k.help.is_empty(), "{} has no help", k.name);
            assert!(
                k.default.is_some() || !k.unset.is_empty() || k.kind == Kind::Entries,
                "{} says nothing while unset",
                k.name
            );
        }
        assert_eq!(by_name("limits.cpus").unwrap().flag, Some("cpus"));
    }
}
