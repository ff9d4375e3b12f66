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

/// The longest duration any setting takes, in seconds (365 days): every duration is checked
/// against it where it is parsed, so no sum of an instant and a setting can overflow.
pub const MAX_SECONDS: u64 = 365 * 86_400;

/// The largest size any setting takes (1 PiB).
pub const MAX_BYTES: i64 = 1 << 50;

/// The largest count (a process limit) any setting takes.
pub const MAX_COUNT: i64 = 1 << 22;

/// The clap parser of a flag taking whole seconds, 0 to [`MAX_SECONDS`].
pub fn seconds() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(0..=MAX_SECONDS)
}

/// Parses a size like `256k`, `5m`, `1g`, `1048576` (at most [`MAX_BYTES`]).
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
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| Error::usage(format!("`{s}` is not a size (e.g. 512m, 1g)")))?;
    let bytes = n * mult as f64;
    if bytes > MAX_BYTES as f64 {
        return Err(Error::usage(format!(
            "size `{s}` is out of range (at most 1048576g)"
        )));
    }
    Ok(bytes as i64)
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

    #[test]
    fn sizes_at_the_extremes_are_refused_not_wrapped() {
        for s in [
            "18446744073709551615",
            "9223372036854775807k",
            "1048577g",
            "1e300",
            "inf",
            "infg",
            "nan",
            "NaNm",
            "-1",
            "-5m",
        ] {
            assert!(parse_bytes(s).is_err(), "{s}");
        }
        assert_eq!(parse_bytes("1048576g").unwrap(), MAX_BYTES);
        assert_eq!(parse_bytes("0").unwrap(), 0);
    }

    #[test]
    fn second_flags_stop_at_a_year() {
        let cmd =
            clap::Command::new("t").arg(clap::Arg::new("s").long("s").value_parser(seconds()));
        for bad in ["18446744073709551615", "31536001", "-1"] {
            assert!(
                cmd.clone().try_get_matches_from(["t", "--s", bad]).is_err(),
                "{bad}"
            );
        }
        let m = cmd.try_get_matches_from(["t", "--s", "31536000"]).unwrap();
        assert_eq!(m.get_one::<u64>("s"), Some(&MAX_SECONDS));
    }
}
