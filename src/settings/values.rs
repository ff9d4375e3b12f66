//! Values as people write them: sizes (`512m`), environment variable names, env files.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Environment variable names a bench may get (as the shell and Docker accept them).
pub fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses a size like `256k`, `5m`, `1g`, `1048576`.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("`{s}` is not a size (e.g. 512m, 1g)")))?;
    Ok((n * mult as f64) as i64)
}

/// Parses a memory limit (at least Docker's minimum of 6m).
pub fn parse_memory(s: &str) -> Result<i64> {
    let bytes = parse_bytes(s)?;
    if bytes < 6 * (1 << 20) {
        return Err(Error::usage(format!(
            "memory limit `{s}` is below Docker's minimum of 6m"
        )));
    }
    Ok(bytes)
}

/// Reads an env file (`NAME=value` per line, `#` comments, blank lines; a bare `NAME` takes
/// the value from benchctl's environment), as `docker run --env-file` does: no quoting.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the env file `{}`: {e}",
            path.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim_end().to_string(), Some(v.to_string())),
            None => (line.trim_end().to_string(), None),
        };
        if !valid_env_name(&name) {
            return Err(Error::usage(format!(
                "env file `{}`, line {}: `{}` is not a variable name",
                path.display(),
                n + 1,
                name.escape_debug()
            )));
        }
        let value = match value {
            Some(v) => v,
            None => std::env::var(&name).map_err(|_| {
                Error::usage(format!(
                    "env file `{}`, line {}: {name} has no value and is not set in the environment",
                    path.display(),
                    n + 1
                ))
            })?,
        };
        out.insert(name, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1GB").unwrap(), 1 << 30);
        assert!(parse_memory("1k").is_err());
        assert!(parse_memory("lots").is_err());
    }
}
