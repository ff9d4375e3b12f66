//! The flags of the key table's settings: clap arguments made from each key's declaration, and
//! the layer that what was given on the command line (or in the flag's environment variable)
//! makes, with each value's origin.

use super::keys::{Key, Kind, KEYS};
use super::layer::{Layer, Origin};
use super::values::{read_env_file, valid_env_name};
use crate::{Error, Result};
use clap::builder::PossibleValuesParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use std::path::PathBuf;

/// The clap argument of `key` (its id is the flag's name).
pub fn arg(key: &'static Key) -> Arg {
    let mut a = Arg::new(key.id())
        .long(key.id())
        .value_name(key.value_name)
        .help(key.help);
    if let Some(s) = key.short {
        a = a.short(s);
    }
    if let Some(var) = key.env {
        a = a.env(var);
    }
    match key.kind {
        Kind::Entries => a.action(ArgAction::Append),
        Kind::Port => a.value_parser(clap::value_parser!(u16)),
        Kind::Seconds => a.value_parser(super::values::seconds()),
        Kind::Count => a.value_parser(clap::value_parser!(i64).range(0..=super::values::MAX_COUNT)),
        Kind::Cpus => a.value_parser(clap::value_parser!(f64)),
        Kind::Choice(words) => a.value_parser(PossibleValuesParser::new(words)),
        Kind::Text | Kind::Size => a,
    }
}

/// Where `key`'s value in `m` came from: the command line or its environment variable.
pub fn origin(key: &Key, m: &ArgMatches) -> Origin {
    match (m.value_source(key.id()), key.env) {
        (Some(ValueSource::EnvVariable), Some(var)) => Origin::Env(var.to_string()),
        _ => Origin::Flag(key.flag_text()),
    }
}

/// Puts `value` of `key`, given by flag or environment, into `layer`.
pub fn given(layer: &mut Layer, key: &Key, value: Option<&str>, m: &ArgMatches) {
    if let Some(v) = value {
        layer.set(key.name, v, origin(key, m));
    }
}

/// What the bench settings' flags were given: `(key, values, origin)`.
#[derive(Debug, Clone, Default)]
pub struct KeyArgs {
    given: Vec<(&'static Key, Vec<String>, Origin)>,
}

fn bench_keys() -> impl Iterator<Item = &'static Key> {
    KEYS.iter().copied().filter(|k| k.bench_flag)
}

impl clap::Args for KeyArgs {
    fn augment_args(cmd: Command) -> Command {
        bench_keys().fold(cmd, |cmd, k| cmd.arg(arg(k)))
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for KeyArgs {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut given = Vec::new();
        for key in bench_keys() {
            let id = key.id();
            let values: Vec<String> = match key.kind {
                Kind::Port => m
                    .get_one::<u16>(id)
                    .map(u16::to_string)
                    .into_iter()
                    .collect(),
                Kind::Seconds => m
                    .get_one::<u64>(id)
                    .map(u64::to_string)
                    .into_iter()
                    .collect(),
                Kind::Count => m
                    .get_one::<i64>(id)
                    .map(i64::to_string)
                    .into_iter()
                    .collect(),
                Kind::Cpus => m
                    .get_one::<f64>(id)
                    .map(f64::to_string)
                    .into_iter()
                    .collect(),
                _ => m
                    .get_many::<String>(id)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
            };
            if !values.is_empty() {
                given.push((key, values, origin(key, m)));
            }
        }
        Ok(KeyArgs { given })
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl KeyArgs {
    /// The layer these flags make; `env_files` (`--env-file`) come before `--env`, which wins
    /// over them. A bare `--env NAME` passes benchctl's own value, as a secret.
    pub fn layer(&self, env_files: &[PathBuf]) -> Result<Layer> {
        let mut layer = Layer::default();
        for f in env_files {
            for (k, v) in read_env_file(f)? {
                layer.set(
                    &format!("{}.{k}", super::keys::ENV.name),
                    v,
                    Origin::EnvFile(f.display().to_string()),
                );
            }
        }
        for (key, values, origin) in &self.given {
            match (key.kind, key.name) {
                (Kind::Entries, "env") => {
                    for e in values {
                        let (name, value, origin) = match e.split_once('=') {
                            Some((k, v)) => (k.to_string(), v.to_string(), origin.clone()),
                            None => {
                                let value = std::env::var(e).map_err(|_| {
                                    Error::usage(format!(
                                        "--env {e}: {e} is not set in benchctl's environment \
                                         (pass NAME=VALUE, or export it)"
                                    ))
                                })?;
                                (e.clone(), value, Origin::Env(e.clone()))
                            }
                        };
                        if !valid_env_name(&name) {
                            return Err(Error::usage(format!(
                                "--env: `{}` is not a variable name",
                                name.escape_debug()
                            )));
                        }
                        layer.set(&format!("{}.{name}", key.name), value, origin);
                    }
                }
                (Kind::Entries, _) => {
                    for a in values {
                        let (k, v) = a.split_once('=').ok_or_else(|| {
                            Error::usage(format!("{} `{a}` is not NAME=VALUE", key.flag_text()))
                        })?;
                        layer.set(&format!("{}.{k}", key.name), v, origin.clone());
                    }
                }
                _ => {
                    if let Some(v) = values.last() {
                        layer.set(key.name, v.clone(), origin.clone());
                    }
                }
            }
        }
        Ok(layer)
    }
}
