//! Secrets (tokens) and their redaction.
//!
//! A [`Secret`] never prints its value (`Debug` and `Display` show `***`). Every secret that
//! benchctl reads is also registered here, so [`redact`] can scrub it from any text that leaves
//! the process (error messages, engine or Tracker answers echoed to the user). Secrets come
//! from the environment or from files ([`secret_from_env`]), never from a flag's value.

use crate::{env, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

fn registry() -> &'static Mutex<Vec<String>> {
    static REG: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    REG.get_or_init(|| Mutex::new(Vec::new()))
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value and registers it for redaction.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into().trim().to_string();
        if value.len() >= 4 {
            let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
            if !reg.contains(&value) {
                reg.push(value.clone());
            }
        }
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every registered secret in `text` with `***`.
pub fn redact(text: &str) -> String {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in reg.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// A source of environment variables (the process environment, or a map in tests).
pub trait EnvSource {
    /// The variable's value; an empty one counts as unset.
    fn get(&self, name: &str) -> Option<String>;
    /// Whether the variable is set at all, even to an empty value.
    fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        env::var(name)
    }
    fn is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some()
    }
}

impl EnvSource for std::collections::HashMap<&str, &str> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name)
            .filter(|v| !v.is_empty())
            .map(|v| v.to_string())
    }
    fn is_set(&self, name: &str) -> bool {
        self.contains_key(name)
    }
}

fn read_token_file(path: &Path, what: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the {what} token file `{}`: {e}",
            path.display()
        ))
    })?;
    let token = Secret::new(text.trim());
    if token.expose().is_empty() {
        return Err(Error::usage(format!(
            "the {what} token file `{}` is empty",
            path.display()
        )));
    }
    Ok(token)
}

/// A token from the variable `var`, or from a file (the flag's, else `file_var`'s); both is an
/// error that names them.
pub fn token(
    envs: &dyn EnvSource,
    var: &str,
    file_var: &str,
    flag_file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<Secret>> {
    let file = flag_file
        .clone()
        .or_else(|| envs.get(file_var).map(PathBuf::from));
    match (envs.get(var), file) {
        (Some(_), Some(f)) => Err(Error::usage(format!(
            "configuration error: both {var} and the {what} token file `{}` are set; keep one",
            f.display()
        ))),
        (Some(t), None) => Ok(Some(Secret::new(t))),
        (None, Some(f)) => read_token_file(&f, what)
            .map(Some)
            .map_err(|e| match flag_file {
                // the variable that named the file, so that it can be found
                None => Error::usage(format!("{file_var}: {e}")),
                Some(_) => e,
            }),
        (None, None) => Ok(None),
    }
}

/// A secret from the variable `var`, or from the file named by `<var>_FILE` (both is an error).
pub fn secret_from_env(envs: &dyn EnvSource, var: &str) -> Result<Option<Secret>> {
    let file_var = format!("{var}_FILE");
    token(
        envs,
        var,
        &file_var,
        &None,
        &var.to_ascii_lowercase().replace('_', " "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_are_redacted() {
        let s = Secret::new("canary-0123456789");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(redact("token canary-0123456789 leaked"), "token *** leaked");
    }
}
