//! A deploy's settings resolved: the layers merged (the branch's `benchctl.toml` read at its
//! head), the issue key derived, every value checked and turned into the [`DeployRequest`];
//! errors say where the wrong value came from.

use super::keys::{self, Key};
use super::layer::{merge, Effective, Layer, Origin};
use super::values::{parse_memory, valid_env_name};
use crate::app::request::{BenchEnv, BenchSettings, DeployRequest, EnvValue, Policy};
use crate::engine::docker::SecretSource;
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Everything a deploy's settings come from besides the repository's config.
pub struct Inputs<'a> {
    /// Settings that are not in config files (bind, public host, link, cache, ...), as a
    /// request whose repository, branch and issue are filled in by [`resolve`].
    pub base: &'a DeployRequest,
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
    let peek = crate::git::peek_branch(repo, branch, cache, super::REPO_CONFIG, reporter)?;
    let at = format!(
        "of branch {branch} at {}",
        crate::naming::short_commit(&peek.head)
    );
    let layer = match &peek.text {
        Ok(Some(text)) => Some(super::file::parse_branch(text, &at)?),
        Ok(None) => None,
        Err(e) => return Err(Error::usage(format!("{e} (branch {branch})"))),
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
) -> Result<(DeployRequest, Effective)> {
    let mut layers = vec![inputs.explicit];
    layers.extend(inputs.local);
    let (peek, repo_config) =
        match repo_layer(&repo, branch, &inputs.base.machine.cache_dir, reporter) {
            Ok(l) => l,
            // a branch that does not exist and carries no key: the key is the first thing wrong
            Err(Error::BranchNotFound { .. }) if inputs.issue.is_none() => {
                let effective = merge(&layers);
                let pattern = effective.get(&keys::ISSUE_PATTERN).unwrap_or_default();
                crate::naming::issue_key_from_branch(branch, pattern)?;
                return Err(Error::BranchNotFound {
                    branch: branch.to_string(),
                    repo: repo.public(),
                });
            }
            Err(e) => return Err(e),
        };
    layers.extend(repo_config.as_ref());
    let effective = merge(&layers);
    let issue = match inputs.issue {
        Some(k) => crate::naming::normalize_issue_key(k)?,
        None => crate::naming::issue_key_from_branch(
            branch,
            effective.get(&keys::ISSUE_PATTERN).unwrap_or_default(),
        )?,
    };
    let mut req = apply(inputs.base, &effective)?;
    // a Dockerfile template: named (--template / `template`), or chosen by what the branch
    // holds when it has no Dockerfile where the (default) path says
    let dockerfile_named = effective
        .origin(keys::DOCKERFILE.name)
        .is_some_and(|o| *o != Origin::Default);
    req.bench.template = match effective.get(&keys::TEMPLATE) {
        Some(name) => Some(crate::build::templates::load(
            name,
            inputs.templates_dir,
            format!("template named{}", effective.from(keys::TEMPLATE.name)),
        )?),
        None if !dockerfile_named
            && !crate::git::commit_has_file(
                &repo,
                &inputs.base.machine.cache_dir,
                &peek.head,
                &req.bench.dockerfile,
            ) =>
        {
            crate::build::templates::detect(&peek.root)
                .map(|(name, why)| crate::build::templates::load(name, inputs.templates_dir, why))
                .transpose()?
        }
        None => None,
    };
    if keys::HOOKS
        .iter()
        .any(|(_, s, c, _, _)| effective.get(s).is_some() || effective.get(c).is_some())
        && effective.get(&keys::COMPOSE).is_none()
        && crate::compose::find(&|n| peek.root.iter().any(|r| r == n)).is_none()
    {
        return Err(Error::usage(format!(
            "hooks run in multi-service benches: branch `{branch}` has no Compose file; add one \
             or remove [hooks] from its benchctl.toml"
        )));
    }
    req.bench.stack = stack(
        &effective,
        &req,
        &repo,
        branch,
        &peek,
        &inputs.base.machine.cache_dir,
    )?;
    let mut req = req.for_branch(repo, branch, &issue);
    req.run.head_hint = Some(peek.head.clone());
    Ok((req, effective))
}

/// The branch's Compose file, when it has one (named by `compose`, else found at its root),
/// read at its head and checked; interpolated from the bench's environment settings.
fn stack(
    e: &Effective,
    req: &DeployRequest,
    repo: &crate::git::RepoSpec,
    branch: &str,
    peek: &crate::git::BranchPeek,
    cache: &Path,
) -> Result<Option<crate::app::request::Stack>> {
    let named = e
        .get(&keys::COMPOSE)
        .map(crate::build::dockerignore::go_clean);
    let file = match named {
        Some(f) => f,
        None => match crate::compose::find(&|n| peek.root.iter().any(|r| r == n)) {
            Some(f) => f.to_string(),
            None => return Ok(None),
        },
    };
    let at = format!(
        "{file} of branch {branch} at {}",
        crate::naming::short_commit(&peek.head)
    );
    if file.starts_with("..") || file.starts_with('/') {
        return Err(Error::usage(format!(
            "compose file `{file}`{} must be a path inside the branch",
            e.from(keys::COMPOSE.name)
        )));
    }
    let text = crate::git::read_at(repo, cache, &peek.head, &file)
        .map_err(|m| Error::usage(format!("{at}: {m}")))?
        .ok_or_else(|| {
            Error::usage(format!(
                "{at}: there is no such file{}; add it or fix the `compose` setting",
                e.from(keys::COMPOSE.name)
            ))
        })?;
    let env: std::collections::HashMap<&str, &str> = req
        .bench
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.value()))
        .collect();
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let read = |p: &str| {
        crate::git::read_at(repo, cache, &peek.head, p)?
            .ok_or_else(|| format!("there is no file `{p}` in the branch"))
    };
    // `.env` beside the file, as Compose reads it; the bench's settings win over it
    let dot_env_path = if dir.is_empty() {
        ".env".to_string()
    } else {
        format!("{dir}/.env")
    };
    let dot_env: std::collections::HashMap<String, String> =
        crate::git::read_at(repo, cache, &peek.head, &dot_env_path)
            .map_err(|m| Error::usage(format!("{at}: {m}")))?
            .map(|t| {
                crate::compose::service::parse_env_file(&t, &|_| None)
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect()
            })
            .unwrap_or_default();
    let lookup = |n: &str| {
        env.get(n)
            .map(|v| v.to_string())
            .or_else(|| dot_env.get(n).cloned())
    };
    let profiles: Vec<String> = e
        .get(&keys::PROFILES)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let allow = compose_allow(e)?;
    let inputs = crate::compose::Inputs {
        env: &lookup,
        read: &read,
        dir,
        profiles: &profiles,
        allow: &allow,
        cap_add: &req.bench.cap_add,
        max_replicas: typed(e, &keys::MAX_REPLICAS, "a number")?.unwrap_or(1),
    };
    let mut project = crate::compose::load(&text, &at, &inputs).map_err(Error::usage)?;
    let (web, chosen) = crate::compose::web_service(&project, e.get(&keys::SERVICE))
        .map_err(|m| Error::usage(format!("{at}: {m}")))?;
    project.notes.extend(chosen);
    let hooks = hooks(e, &project, &at)?;
    Ok(Some(crate::app::request::Stack {
        file,
        project,
        web,
        hooks,
    }))
}

/// `compose-allow`: the switches the operator turned on.
fn compose_allow(
    e: &Effective,
) -> Result<std::collections::BTreeSet<crate::compose::fate::Switch>> {
    use crate::compose::fate::Switch;
    let mut out = std::collections::BTreeSet::new();
    for w in e.get(&keys::COMPOSE_ALLOW).unwrap_or_default().split(',') {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        let s = Switch::parse(w).ok_or_else(|| {
            Error::usage(format!(
                "`{w}`{} is not one of {}",
                e.from(keys::COMPOSE_ALLOW.name),
                Switch::ALL
                    .iter()
                    .map(|s| s.word())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        out.insert(s);
    }
    Ok(out)
}

/// The bench's hooks (`[hooks.seed]`, `[hooks.release]`, `[hooks.teardown]`), checked against
/// the services of `project`.
fn hooks(
    e: &Effective,
    project: &crate::compose::Project,
    at: &str,
) -> Result<Vec<crate::app::request::Hook>> {
    let mut out = Vec::new();
    for (name, service, command, timeout, run) in keys::HOOKS {
        let (s, c) = (e.get(service), e.get(command));
        if s.is_none() && c.is_none() {
            continue;
        }
        let (Some(s), Some(c)) = (s, c) else {
            return Err(Error::usage(format!(
                "hook `{name}` needs both `service` and `command`{}{}",
                e.from(service.name),
                e.from(command.name)
            )));
        };
        if !project.services.contains_key(s) {
            return Err(Error::usage(format!(
                "hook `{name}` runs in service `{s}`{}, which {at} does not run",
                e.from(service.name)
            )));
        }
        let command =
            crate::app::deploy::stack_plan::argv(&crate::compose::Cmd::Shell(c.into()))
                .map_err(|m| Error::usage(format!("hook `{name}`: {m}{}", e.from(command.name))))?;
        let secs: u64 = typed(e, timeout, "a number of seconds")?.unwrap_or(300);
        if secs > hook_limit(e)? && matches!(e.origin(timeout.name), Some(Origin::RepoConfig(_))) {
            return Err(above_ceiling(e, timeout, &keys::MAX_HOOK_TIMEOUT));
        }
        out.push(crate::app::request::Hook {
            name: name.to_string(),
            service: s.to_string(),
            command,
            timeout: std::time::Duration::from_secs(secs.max(1)),
            one_off: e.get(run) == Some("one-off"),
        });
    }
    Ok(out)
}

/// A deploy's request from its settings' inputs: resolved (the branch's `benchctl.toml` read
/// at its head) and checked to have something to build (a Dockerfile where the settings say,
/// or a template), as the CLI and serve deploy. Blocking git runs in place.
pub fn prepare(
    inputs: &Inputs,
    repo: crate::git::RepoSpec,
    branch: &str,
    reporter: &crate::output::SharedReporter,
) -> Result<DeployRequest> {
    tokio::task::block_in_place(|| {
        let (req, _) = resolve(inputs, repo, branch, reporter)?;
        ensure_buildable(&req)?;
        Ok(req)
    })
}

/// Refuses, before any work, a deploy that has nothing to build: the branch has no Dockerfile
/// where the settings say, and no template was chosen.
pub fn ensure_buildable(req: &DeployRequest) -> Result<()> {
    let Some(head) = &req.run.head_hint else {
        return Ok(());
    };
    if req.bench.template.is_none()
        && req.bench.stack.is_none()
        && !crate::git::commit_has_file(
            &req.repo,
            &req.machine.cache_dir,
            head,
            &req.bench.dockerfile,
        )
    {
        return Err(Error::usage(format!(
            "branch `{}` has no `{}` and no template fits it; add a Dockerfile to the \
             branch, pass --dockerfile <path>, or --template <name> (`benchctl templates` lists \
             them)",
            req.branch, req.bench.dockerfile
        )));
    }
    Ok(())
}

/// The value of `key`, else its default.
fn value<'a>(e: &'a Effective, key: &Key) -> Option<&'a str> {
    e.get(key).or(key.default)
}

/// The build secrets: the operator's (`--build-secret`), and those the files name by id and
/// variable (`[build-secrets] npm = "NPM_TOKEN"`). A branch's benchctl.toml may name only the
/// variables the operator allows (`--build-secret-vars`): any other would hand the branch's
/// build one of benchctl's own tokens. The operator's own secret of an id wins.
fn build_secrets(
    e: &Effective,
    operator: &BTreeMap<String, SecretSource>,
) -> Result<BTreeMap<String, SecretSource>> {
    let allowed: Vec<&str> = value(e, &keys::BUILD_SECRET_VARS)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let mut secrets = operator.clone();
    for (id, var) in e.entries(&keys::BUILD_SECRETS) {
        let key = format!("{}.{id}", keys::BUILD_SECRETS.name);
        let spec = format!("id={id},env={var}");
        let (id, source) = crate::app::request::parse_build_secret(&spec)
            .ok()
            .filter(|_| valid_env_name(&var))
            .ok_or_else(|| {
                Error::usage(format!(
                    "build secret `{}` = `{}`: write `ID = \"VARIABLE\"` (an id of letters, \
                     digits, `_.-`, and an environment variable's name){}",
                    id.escape_debug(),
                    var.escape_debug(),
                    e.from(&key)
                ))
            })?;
        if operator.contains_key(&id) {
            continue; // the operator's own secret of this id
        }
        let branch = matches!(e.origin(&key), Some(Origin::RepoConfig(_)));
        if branch && !allowed.contains(&var.as_str()) {
            return Err(Error::usage(format!(
                "build secret `{id}` names benchctl's variable `{var}`, which the operator does \
                 not allow a branch to use (key `{key}`{}); allowed: {} (--build-secret-vars or \
                 {})",
                e.origin(&key)
                    .map(|o| format!(", from {o}"))
                    .unwrap_or_default(),
                match allowed.is_empty() {
                    true => "none".to_string(),
                    false => allowed.join(", "),
                },
                crate::env::BUILD_SECRET_VARS
            )));
        }
        secrets.insert(id, source);
    }
    Ok(secrets)
}

/// The value of `key` (else its default) as a `T`, or an error naming where it came from.
fn typed<T: std::str::FromStr>(e: &Effective, key: &Key, what: &str) -> Result<Option<T>> {
    value(e, key)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| Error::usage(format!("`{v}` is not {what}{}", e.from(key.name))))
        })
        .transpose()
}

/// Refuses a branch's limit or ready timeout above the operator's ceiling for it (a value from
/// the operator's own flags, environment or `--config` is theirs to choose).
fn check_ceilings(e: &Effective, memory: i64, cpus: f64, pids: i64, ready: u64) -> Result<()> {
    let ceiling = |key: &Key| value(e, key).unwrap_or_default().to_string();
    let max_memory = super::values::parse_bytes(&ceiling(&keys::MAX_MEMORY)).map_err(|err| {
        Error::usage(format!(
            "ceiling {}: {err}{}",
            keys::MAX_MEMORY.flag_text(),
            e.from(keys::MAX_MEMORY.name)
        ))
    })?;
    let max_cpus: f64 = typed(e, &keys::MAX_CPUS, "a number of cores")?.unwrap_or_default();
    let max_pids: i64 = typed(e, &keys::MAX_PIDS, "a number")?.unwrap_or_default();
    let max_ready: u64 =
        typed(e, &keys::MAX_READY_TIMEOUT, "a number of seconds")?.unwrap_or_default();
    for (key, over) in [
        (&keys::MEMORY, memory > max_memory),
        (&keys::CPUS, cpus > max_cpus),
        (&keys::PIDS, pids > max_pids),
        (&keys::READY_TIMEOUT, ready > max_ready),
    ] {
        let from_branch = matches!(e.origin(key.name), Some(Origin::RepoConfig(_)));
        if !(over && from_branch) {
            continue;
        }
        let (_, max) = keys::CEILINGS
            .iter()
            .find(|(k, _)| k.name == key.name)
            .expect("every limit has a ceiling");
        return Err(above_ceiling(e, key, max));
    }
    Ok(())
}

/// The error of a branch's `key` above the operator's ceiling `max`, naming both and where each
/// came from.
fn above_ceiling(e: &Effective, key: &Key, max: &Key) -> Error {
    Error::usage(format!(
        "`{} = {}`{} is above the operator's ceiling {} {}{}: lower it in the branch, or \
         whoever runs benchctl raises the ceiling with {}{}",
        key.name,
        e.get(key).unwrap_or_default(),
        e.from(key.name),
        max.flag_text(),
        value(e, max).unwrap_or_default(),
        e.from(max.name),
        max.flag_text(),
        max.env.map(|v| format!(" or {v}")).unwrap_or_default(),
    ))
}

/// The longest any hook may run (`max-hook-timeout`), in seconds.
fn hook_limit(e: &Effective) -> Result<u64> {
    Ok(typed(e, &keys::MAX_HOOK_TIMEOUT, "a number of seconds")?
        .unwrap_or(600)
        .max(1))
}

/// The request with the merged settings, each checked (errors say where the value came from).
pub fn apply(base: &DeployRequest, e: &Effective) -> Result<DeployRequest> {
    let ready: u64 = typed(e, &keys::READY_TIMEOUT, "a number of seconds")?.unwrap_or_default();
    if ready == 0 {
        return Err(Error::usage(format!(
            "the ready timeout must be at least 1 second{}",
            e.from(keys::READY_TIMEOUT.name)
        )));
    }
    let cpus: f64 = typed(e, &keys::CPUS, "a number of cores")?.unwrap_or_default();
    if !(cpus > 0.0 && cpus <= 1024.0) {
        return Err(Error::usage(format!(
            "cpus {cpus} is out of range{}",
            e.from(keys::CPUS.name)
        )));
    }
    let pids: i64 = typed(e, &keys::PIDS, "a number")?.unwrap_or_default();
    if pids < 1 {
        return Err(Error::usage(format!(
            "the pids limit must be positive{}",
            e.from(keys::PIDS.name)
        )));
    }
    let memory = parse_memory(value(e, &keys::MEMORY).unwrap_or_default())
        .map_err(|err| Error::usage(format!("{err}{}", e.from(keys::MEMORY.name))))?;
    check_ceilings(e, memory, cpus, pids, ready)?;
    let health_path = value(e, &keys::HEALTH_PATH).unwrap_or_default().to_string();
    if !health_path.starts_with('/')
        || health_path
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(Error::usage(format!(
            "health path `{}` must start with `/` and hold no spaces{}",
            health_path.escape_debug(),
            e.from(keys::HEALTH_PATH.name)
        )));
    }
    let mut env = Vec::new();
    for (name, value) in e.entries(&keys::ENV) {
        let key = format!("{}.{name}", keys::ENV.name);
        if !valid_env_name(&name) {
            return Err(Error::usage(format!(
                "`{}` is not an environment variable name{}",
                name.escape_debug(),
                e.from(&key)
            )));
        }
        let secret = e.origin(&key).is_some_and(Origin::is_secret);
        env.push(BenchEnv {
            name,
            value: if secret {
                EnvValue::Secret(crate::secret::Secret::new(value))
            } else {
                EnvValue::Plain(value)
            },
        });
    }
    let build_args = e.entries(&keys::BUILD_ARGS);
    for name in build_args.keys() {
        if !valid_env_name(name) {
            return Err(Error::usage(format!(
                "`{}` is not a build argument name{}",
                name.escape_debug(),
                e.from(&format!("{}.{name}", keys::BUILD_ARGS.name))
            )));
        }
    }
    let build_secrets = build_secrets(e, &base.bench.build_secrets)?;
    let url_template = e.get(&keys::URL_TEMPLATE).map(str::to_string);
    if let Some(t) = &url_template {
        crate::naming::check_url_template(t)
            .map_err(|err| Error::usage(format!("{err}{}", e.from(keys::URL_TEMPLATE.name))))?;
    }
    if base.bench.router.is_some() {
        match &url_template {
            None => {
                return Err(Error::usage(
                    "--router traefik needs --url-template (the host name the proxy routes)",
                ))
            }
            Some(t) if t.contains("{port}") => {
                return Err(Error::usage(format!(
                    "URL template `{t}`: a routed bench publishes no port, so {{port}} cannot \
                     be used{}",
                    e.from(keys::URL_TEMPLATE.name)
                )))
            }
            _ => {}
        }
    }
    let field = super::host::bench_field(
        e.get(&keys::FIELD),
        &std::collections::HashMap::<&str, &str>::new(),
    )
    .map_err(|err| Error::usage(format!("{err}{}", e.from(keys::FIELD.name))))?;
    Ok(DeployRequest {
        bench: BenchSettings {
            url_template,
            dockerfile: value(e, &keys::DOCKERFILE).unwrap_or_default().to_string(),
            port: typed(e, &keys::PORT, "a port number")?,
            ready_timeout: std::time::Duration::from_secs(ready),
            limits: crate::engine::Limits {
                memory_bytes: memory,
                nano_cpus: (cpus * 1e9) as i64,
                pids,
            },
            build_args,
            build_secrets,
            target: e.get(&keys::TARGET).map(str::to_string),
            health_path,
            env,
            hook_limit: std::time::Duration::from_secs(hook_limit(e)?),
            ..base.bench.clone()
        },
        policy: Policy {
            field,
            ..base.policy.clone()
        },
        machine: crate::app::request::Machine {
            cap: crate::app::cap::Cap {
                max_running: typed(e, &keys::MAX_RUNNING, "a number")?,
                max_memory: value(e, &keys::MAX_MEMORY_TOTAL)
                    .map(super::values::parse_bytes)
                    .transpose()
                    .map_err(|err| {
                        Error::usage(format!("{err}{}", e.from(keys::MAX_MEMORY_TOTAL.name)))
                    })?,
                last_used: Default::default(),
            },
            ..base.machine.clone()
        },
        ..base.clone()
    })
}
