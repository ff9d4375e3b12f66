//! What a deploy is asked to do ([`DeployRequest`]), resolved from the settings layers before
//! any work starts, and the hashes that tell whether a running bench already matches it.

use crate::app::routing::Router;
use crate::engine::{BuildKit, Builder, Limits};
use crate::git::RepoSpec;
use crate::Error;
use sha2::Digest;
use std::time::Duration;

/// Everything a deploy needs to know, resolved before any work starts: which branch for which
/// issue, how its bench is built and run, what the deploy may do, where this machine keeps
/// things, and this run's own state.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub repo: RepoSpec,
    pub branch: String,
    pub issue: String,
    pub bench: BenchSettings,
    pub policy: Policy,
    pub machine: Machine,
    pub run: RunState,
}

/// How the bench is built and run: what its settings hash covers. `Default` is a blank to be
/// filled in by [`crate::settings::apply`] (the defaults are the settings', `settings/keys.rs`).
#[derive(Debug, Clone, Default)]
pub struct BenchSettings {
    pub dockerfile: String,
    /// The Dockerfile template to build with instead of the branch's Dockerfile.
    pub template: Option<crate::build::templates::Chosen>,
    /// `--build-arg` values.
    pub build_args: std::collections::BTreeMap<String, String>,
    /// The Dockerfile stage to build (`--target`).
    pub target: Option<String>,
    pub port: Option<u16>,
    pub bind: String,
    pub public_host: String,
    pub ready_timeout: Duration,
    /// Path the readiness probe asks (any answer below 500 counts for `/`, only 2xx/3xx for
    /// another path).
    pub health_path: String,
    pub limits: Limits,
    /// The bench's environment.
    pub env: Vec<BenchEnv>,
    /// The bench's address as a template (`https://{issue}.bench.example.com`).
    pub url_template: Option<String>,
    /// Route through a reverse proxy instead of publishing a port.
    pub router: Option<Router>,
    /// Capabilities the operator adds to the bench's (`--cap-add`).
    pub cap_add: Vec<String>,
    /// How long the build may run (`--build-timeout`).
    pub build_timeout: Duration,
    /// Which builder builds the images (`--builder`, the operator's setting only).
    pub builder: BuilderChoice,
    /// The network of build steps (`--build-network`, the operator's setting only).
    pub build_network: crate::engine::BuildNetwork,
    /// The longest any hook runs (`max-hook-timeout`): a branch's timeouts above it are
    /// refused, and a teardown hook stops there whatever its bench's label says.
    pub hook_limit: Duration,
    /// No build starts while the engine's disk has less free (`--min-free-disk`, bytes; 0:
    /// no check; the operator's setting only).
    pub min_free_disk: u64,
    /// The images a branch may name (`--allow-images`, the operator's setting only).
    pub allow_images: crate::build::allow::ImagePolicy,
    /// What benches and builds may reach (`--egress`, the operator's setting only).
    pub egress: crate::engine::egress::Egress,
    /// Build secrets by id (`--build-secret`, the operator's setting only): where each value
    /// comes from, never the value.
    pub build_secrets: std::collections::BTreeMap<String, crate::engine::docker::SecretSource>,
    /// A multi-service bench (the branch holds a Compose file), else a single container.
    pub stack: Option<Stack>,
}

/// A command the bench runs at a moment of its life (`[hooks.<name>]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// `seed` (once in a bench's life), `release` (every deploy), `teardown`.
    pub name: String,
    pub service: String,
    pub command: Vec<String>,
    pub timeout: Duration,
    /// In a container of its own rather than in the service's running one.
    pub one_off: bool,
}

/// A multi-service bench: the branch's Compose file, read at its head and checked.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The file's path in the branch.
    pub file: String,
    pub project: crate::compose::Project,
    /// The service that is the bench (its address is linked).
    pub web: String,
    pub hooks: Vec<Hook>,
}

impl Stack {
    /// The hook `name`, when the bench has one.
    pub fn hook(&self, name: &str) -> Option<&Hook> {
        self.hooks.iter().find(|h| h.name == name)
    }
}

/// What the deploy may do.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The Tracker field the bench's address goes to.
    pub field: String,
    /// False with `--no-link`.
    pub link: bool,
    /// Rebuild and replace even when nothing changed, and deploy an older commit over a newer.
    pub force: bool,
    /// Which deploys the issue hears of as Tracker comments (`--tracker-comment`).
    pub comments: TrackerComments,
}

/// `--tracker-comment`: which deploys add a comment to the issue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrackerComments {
    /// A failed deploy, and the success that follows one ("the bench is back").
    #[default]
    Failures,
    /// Every deploy that starts a bench, and every failure.
    All,
    Off,
}

impl std::str::FromStr for TrackerComments {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "failures" => Ok(TrackerComments::Failures),
            "all" => Ok(TrackerComments::All),
            "off" => Ok(TrackerComments::Off),
            other => Err(format!(
                "unknown --tracker-comment `{other}`: use failures, all or off"
            )),
        }
    }
}

/// Where this machine keeps things and finds the engine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Where cached clones live.
    pub cache_dir: std::path::PathBuf,
    /// The host of a remote engine (`DOCKER_HOST`), where published ports are probed.
    pub engine_host: Option<String>,
    /// The cap on the engine's running benches (`--max-running`, `--max-memory-total`).
    pub cap: crate::app::cap::Cap,
}

/// This run's own state.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// Random id labelled on what this deploy creates (cleanup after an interruption).
    pub deploy_id: String,
    /// Set once the new container passed readiness: only then may an interrupted deploy leave
    /// it as the bench (when the previous one is already gone).
    pub ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The branch's head as read with its config just before (the read-only no-op check uses
    /// it; under the lock the head is asked for again).
    pub head_hint: Option<String>,
    /// The commit the deploy started work on, once it did (a failure's record names it).
    pub working_on: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// One variable of a bench's environment. Values taken from benchctl's environment or an env
/// file are secrets: they reach the container and nothing else (no label, no output).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEnv {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EnvValue {
    /// Given on the command line or in a config file.
    Plain(String),
    /// Read from the environment or an env file.
    Secret(crate::secret::Secret),
}

impl BenchEnv {
    pub fn value(&self) -> &str {
        match &self.value {
            EnvValue::Plain(v) => v,
            EnvValue::Secret(s) => s.expose(),
        }
    }
}

impl DeployRequest {
    /// This request's settings applied to one branch: a new deploy id and readiness flag.
    pub fn for_branch(&self, repo: RepoSpec, branch: &str, issue: &str) -> DeployRequest {
        DeployRequest {
            repo,
            branch: branch.to_string(),
            issue: issue.to_string(),
            run: RunState {
                deploy_id: format!("{:016x}", rand::random::<u64>()),
                ..RunState::default()
            },
            ..self.clone()
        }
    }

    /// Hash of what shapes the image besides the commit (images are tagged and reused by it).
    pub fn build_hash(&self) -> String {
        self.bench.build_hash()
    }

    /// Hash of everything besides the commit that shapes the bench.
    pub fn settings_hash(&self) -> String {
        self.bench.settings_hash()
    }
}

/// The operator's choice of builder (`--builder`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BuilderChoice {
    /// The classic builder, whose steps run under the bench's limits.
    Classic,
    /// The engine's BuildKit; an engine without it is an error.
    BuildKit,
    /// BuildKit where the engine has it and its steps are bounded, else the classic builder.
    #[default]
    Auto,
}

/// A `--build-secret` value: `id=X,env=NAME` (benchctl's environment variable NAME) or
/// `id=X,src=PATH` (a file).
pub fn parse_build_secret(
    spec: &str,
) -> std::result::Result<(String, crate::engine::docker::SecretSource), String> {
    use crate::engine::docker::SecretSource;
    let mut id = None;
    let mut source = None;
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let v = v.trim();
        match (k.trim(), source.is_some()) {
            ("id", _) => id = Some(v.to_string()),
            ("env", false) if !v.is_empty() => source = Some(SecretSource::Env(v.to_string())),
            ("src" | "source", false) if !v.is_empty() => {
                source = Some(SecretSource::File(v.into()))
            }
            _ => {
                return Err(format!(
                    "--build-secret `{}`: write `id=NAME,env=VARIABLE` or `id=NAME,src=PATH`",
                    spec.escape_debug()
                ))
            }
        }
    }
    let id = id.filter(|i| {
        !i.is_empty()
            && i.len() <= 64
            && i.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    });
    match (id, source) {
        (Some(id), Some(source)) => Ok((id, source)),
        _ => Err(format!(
            "--build-secret `{}`: it needs an id (letters, digits, `_.-`) and one of env= or \
             src=",
            spec.escape_debug()
        )),
    }
}

impl std::str::FromStr for BuilderChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "classic" => Ok(BuilderChoice::Classic),
            "buildkit" => Ok(BuilderChoice::BuildKit),
            "auto" => Ok(BuilderChoice::Auto),
            other => Err(format!(
                "unknown builder `{other}`: use `classic`, `buildkit` or `auto`"
            )),
        }
    }
}

impl BuilderChoice {
    /// The builder for this choice, given what the engine's BuildKit is (or why there is
    /// none), and why. `auto` (the default) builds with BuildKit only where its steps are
    /// bounded: the engine's BuildKit ignores the build API's limits, and a branch's build must
    /// not take the host's memory (README: Builders).
    pub fn resolve(
        self,
        buildkit: std::result::Result<BuildKit, String>,
    ) -> crate::Result<(Builder, String)> {
        Ok(match (self, buildkit) {
            (BuilderChoice::Classic, _) => (Builder::Classic, "--builder classic".into()),
            (BuilderChoice::BuildKit, Ok(bk)) => {
                let bound = match bk.bound {
                    Ok(bound) => bound,
                    Err(_) => "its steps are not bounded: for branches you trust".into(),
                };
                (
                    Builder::BuildKit,
                    format!("--builder buildkit; {}; {bound}", bk.version),
                )
            }
            (BuilderChoice::BuildKit, Err(why)) => {
                return Err(Error::usage(format!(
                    "--builder buildkit needs an engine with BuildKit, but {why}; build with \
                     --builder classic"
                )))
            }
            (
                BuilderChoice::Auto,
                Ok(BuildKit {
                    version,
                    bound: Ok(bound),
                }),
            ) => (
                Builder::BuildKit,
                format!("--builder auto, the default; {version}; {bound}"),
            ),
            (
                BuilderChoice::Auto,
                Ok(BuildKit {
                    version,
                    bound: Err(why),
                }),
            ) => (
                Builder::Classic,
                format!(
                    "--builder auto, the default: {version} has BuildKit, but {why}; bound it \
                     (README: Builders) or choose --builder buildkit for branches you trust"
                ),
            ),
            (BuilderChoice::Auto, Err(why)) => (
                Builder::Classic,
                format!("--builder auto, the default; {why}"),
            ),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BuilderChoice::Classic => "classic",
            BuilderChoice::BuildKit => "buildkit",
            BuilderChoice::Auto => "auto",
        }
    }
}

impl BenchSettings {
    /// Hash of what shapes the image besides the commit (images are tagged and reused by it).
    pub fn build_hash(&self) -> String {
        let mut text = format!("b1|{}", self.dockerfile);
        if self.builder != BuilderChoice::Classic {
            text.push_str(&format!("|builder|{}", self.builder.as_str()));
        }
        // which secrets, and from where; never their values
        if !self.build_secrets.is_empty() {
            text.push_str(&format!("|secrets|{:?}", self.build_secrets));
        }
        if self.target.is_some() || !self.build_args.is_empty() {
            text.push_str(&format!("|{:?}|{:?}", self.target, self.build_args));
        }
        if let Some(t) = &self.template {
            text.push_str(&format!("|template|{}|{}", t.name, t.dockerfile));
        }
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..3])
    }

    /// Hash of everything besides the commit that shapes the bench: a no-op redeploy needs the
    /// same commit and the same settings.
    pub fn settings_hash(&self) -> String {
        let mut text = format!(
            "v1|{}|{:?}|{}|{}|{}|{}|{}",
            self.dockerfile,
            self.port,
            self.bind,
            self.public_host,
            self.limits.memory_bytes,
            self.limits.nano_cpus,
            self.limits.pids
        );
        let extra = self.health_path != "/"
            || !self.env.is_empty()
            || self.target.is_some()
            || !self.build_args.is_empty()
            || self.url_template.is_some()
            || self.router.is_some()
            || !self.cap_add.is_empty()
            || self.stack.is_some();
        if extra {
            text.push_str(&format!("|{:?}|{:?}", self.url_template, self.router));
            if !self.cap_add.is_empty() {
                text.push_str(&format!("|caps|{:?}", self.cap_add));
            }
            if let Some(st) = &self.stack {
                // the whole model (interpolated values among it) only enters this hash
                text.push_str(&format!(
                    "|stack|{}|{}|{:?}|{:?}",
                    st.file, st.web, st.project, st.hooks
                ));
            }
            // values (secrets among them) only enter as part of this one-way hash
            let env: Vec<(&str, &str)> = self
                .env
                .iter()
                .map(|e| (e.name.as_str(), e.value()))
                .collect();
            text.push_str(&format!(
                "|{}|{}|{env:?}",
                self.health_path,
                self.build_hash()
            ));
        }
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::docker::SecretSource;
    use std::str::FromStr;

    #[test]
    fn build_secrets_name_an_id_and_one_source() {
        assert_eq!(
            parse_build_secret("id=npm,env=NPM_TOKEN"),
            Ok(("npm".into(), SecretSource::Env("NPM_TOKEN".into())))
        );
        assert_eq!(
            parse_build_secret("src=/run/s/k,id=key.v2"),
            Ok(("key.v2".into(), SecretSource::File("/run/s/k".into())))
        );
        for bad in [
            "id=npm",
            "env=X",
            "id=,env=X",
            "id=a b,env=X",
            "id=a,env=X,src=/f",
            "id=a,value=x",
            "id=a,env=",
        ] {
            assert!(parse_build_secret(bad).is_err(), "{bad}");
        }
        assert_eq!(BuilderChoice::from_str("auto"), Ok(BuilderChoice::Auto));
        assert!(BuilderChoice::from_str("kaniko").is_err());
    }

    fn bk(bound: std::result::Result<&str, &str>) -> std::result::Result<BuildKit, String> {
        Ok(BuildKit {
            version: "Docker 20.10.24, API 1.41".into(),
            bound: bound.map(String::from).map_err(String::from),
        })
    }

    #[test]
    fn auto_builds_with_buildkit_only_where_its_steps_are_bounded() {
        let bounded = bk(Ok(
            "its steps are bounded by /docker/buildkit: memory 2.0 GiB",
        ));
        let (b, why) = BuilderChoice::Auto.resolve(bounded).unwrap();
        assert_eq!(b, Builder::BuildKit);
        assert!(why.contains("memory 2.0 GiB"), "{why}");
        let (b, why) = BuilderChoice::Auto
            .resolve(bk(Err("no memory bound")))
            .unwrap();
        assert_eq!(b, Builder::Classic);
        assert!(
            why.contains("has BuildKit, but no memory bound") && why.contains("README"),
            "{why}"
        );
        let (b, why) = BuilderChoice::Auto.resolve(Err("API 1.38".into())).unwrap();
        assert_eq!((b, why.contains("API 1.38")), (Builder::Classic, true));
    }

    #[test]
    fn an_explicit_choice_is_kept_or_refused() {
        let (b, why) = BuilderChoice::BuildKit
            .resolve(bk(Err("no memory bound")))
            .unwrap();
        assert_eq!(b, Builder::BuildKit);
        assert!(why.contains("not bounded"), "{why}");
        let err = BuilderChoice::BuildKit
            .resolve(Err("API 1.38".into()))
            .unwrap_err();
        assert!(err.to_string().contains("--builder classic"), "{err}");
        let (b, _) = BuilderChoice::Classic.resolve(bk(Ok("bounded"))).unwrap();
        assert_eq!(b, Builder::Classic);
    }
}
