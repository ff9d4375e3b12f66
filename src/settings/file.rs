//! Config files (`benchctl.toml` at the branch's head, the operator's `--config`): TOML whose
//! keys are those of the key table (`[limits]`, `[env]` and `[build-args]` as tables). Unknown
//! keys and wrong types are errors naming the file, the line and the key.

use super::keys::{self, Files, Key, Kind, KEYS};
use super::layer::{Layer, Origin};
use super::values;
use crate::{Error, Result};
use std::path::Path;
use toml::Value;

/// The line of `key` (in table `table`, `None` for the top) in `text`, found as TOML writes it
/// plainly (`key = ...` under `[table]`).
fn line_of(text: &str, table: Option<&str>, key: &str) -> Option<usize> {
    let mut current: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.split(']').next()) {
            current = Some(h.trim().trim_matches('"').to_string());
            continue;
        }
        let Some((k, _)) = t.split_once('=') else {
            continue;
        };
        if current.as_deref() == table && k.trim().trim_matches('"') == key {
            return Some(n + 1);
        }
    }
    None
}

/// A value of `key` as text, when it has the key's type.
fn text(key: &Key, v: &Value) -> Option<String> {
    match (key.kind, v) {
        (Kind::Text | Kind::Size, Value::String(s)) => Some(s.clone()),
        (Kind::Choice(words), Value::String(s)) => words.contains(&s.as_str()).then(|| s.clone()),
        (Kind::Port, Value::Integer(i)) => (1..=65535).contains(i).then(|| i.to_string()),
        (Kind::Seconds, Value::Integer(i)) => (0..=values::MAX_SECONDS as i64)
            .contains(i)
            .then(|| i.to_string()),
        (Kind::Count, Value::Integer(i)) => {
            (0..=values::MAX_COUNT).contains(i).then(|| i.to_string())
        }
        (Kind::Cpus, Value::Float(f)) => Some(f.to_string()),
        (Kind::Cpus, Value::Integer(i)) => Some(i.to_string()),
        _ => None,
    }
}

fn expected(key: &Key) -> String {
    match key.kind {
        Kind::Text => "a string".into(),
        Kind::Size => "a size as a string, e.g. \"512m\"".into(),
        Kind::Port => "a port number (1-65535)".into(),
        Kind::Seconds => format!(
            "a whole number of seconds from 0 to {} (365 days)",
            values::MAX_SECONDS
        ),
        Kind::Count => format!("a whole number from 0 to {}", values::MAX_COUNT),
        Kind::Cpus => "a number of cores, e.g. 0.5".into(),
        Kind::Choice(words) => format!("one of {}", words.join(", ")),
        Kind::Entries => "a table of NAME = \"value\"".into(),
    }
}

/// Parses a config file's text into a layer whose values all come from `origin`; errors name
/// `at` (the file), the line and the key.
pub fn parse(text: &str, at: &str, origin: Origin) -> Result<Layer> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let msg = e.message().trim().to_string();
        Error::usage(match line {
            Some(l) => format!("{at}, line {l}: {msg}"),
            None => format!("{at}: {msg}"),
        })
    })?;
    let fail = |table: Option<&str>, key: &str, msg: String| {
        Error::usage(match line_of(text, table, key) {
            Some(l) => format!("{at}, line {l}: {msg}"),
            None => format!("{at}: {msg}"),
        })
    };
    let mut layer = Layer::default();
    for (name, value) in &table {
        // a table of keys (`[limits]`), or of entries (`[env]`)
        if let (Value::Table(inner), None) = (value, keys::by_name(name)) {
            let prefix = format!("{name}.");
            if !KEYS.iter().any(|k| k.name.starts_with(&prefix)) {
                return Err(fail(None, name, format!("unknown key `{name}`")));
            }
            for (sub, v) in inner {
                let full = format!("{name}.{sub}");
                // a table one level deeper (`[hooks.seed]`)
                let deeper = format!("{full}.");
                if let (Value::Table(leaf), None) = (v, keys::by_name(&full)) {
                    if KEYS.iter().any(|k| k.name.starts_with(&deeper)) {
                        for (k2, v2) in leaf {
                            let name2 = format!("{full}.{k2}");
                            let Some(key) = keys::by_name(&name2) else {
                                let known: Vec<&str> = KEYS
                                    .iter()
                                    .filter_map(|k| k.name.strip_prefix(&deeper))
                                    .collect();
                                return Err(fail(
                                    Some(&full),
                                    k2,
                                    format!(
                                        "unknown key `{k2}` in [{full}], expected one of {}",
                                        known.join(", ")
                                    ),
                                ));
                            };
                            let t = text_or_fail(key, v2, |m| fail(Some(&full), k2, m))?;
                            layer.set(&name2, t, origin.clone());
                        }
                        continue;
                    }
                }
                let Some(key) = keys::by_name(&full) else {
                    let known: Vec<&str> = KEYS
                        .iter()
                        .filter_map(|k| k.name.strip_prefix(&prefix))
                        .collect();
                    return Err(fail(
                        Some(name),
                        sub,
                        format!(
                            "unknown key `{sub}` in [{name}], expected one of {}",
                            known.join(", ")
                        ),
                    ));
                };
                let t = text_or_fail(key, v, |m| fail(Some(name), sub, m))?;
                layer.set(&full, t, origin.clone());
            }
            continue;
        }
        let Some(key) = keys::by_name(name) else {
            return Err(fail(None, name, format!("unknown key `{name}`")));
        };
        if key.kind == Kind::Entries {
            let Value::Table(entries) = value else {
                return Err(fail(
                    None,
                    name,
                    format!("`{name}` must be {}", expected(key)),
                ));
            };
            for (entry, v) in entries {
                let Value::String(s) = v else {
                    return Err(fail(
                        Some(name),
                        entry,
                        format!("`{name}.{entry}` must be a string"),
                    ));
                };
                layer.set(&format!("{name}.{entry}"), s.clone(), origin.clone());
            }
            continue;
        }
        let t = text_or_fail(key, value, |m| fail(None, name, m))?;
        layer.set(name, t, origin.clone());
    }
    Ok(layer)
}

fn text_or_fail(key: &Key, v: &Value, fail: impl Fn(String) -> Error) -> Result<String> {
    text(key, v).ok_or_else(|| fail(format!("`{}` must be {}, not {v}", key.name, expected(key))))
}

/// Reads the operator's config file (`--config`).
pub fn read_local(path: &Path) -> Result<Layer> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the config file `{}`: {e}",
            path.display()
        ))
    })?;
    parse(
        &text,
        &format!("config file `{}`", path.display()),
        Origin::LocalConfig(format!("--config {}", path.display())),
    )
}

/// Parses a branch's `benchctl.toml`, refusing the keys only the operator sets: where benches
/// run, the Tracker field, the bench's address, the issue pattern and the ceilings reach past
/// the branch's own bench. `at` names the branch and its commit.
pub fn parse_branch(text: &str, at: &str) -> Result<Layer> {
    let origin = Origin::RepoConfig(at.to_string());
    let file = format!("{} {at}", super::REPO_CONFIG);
    let layer = parse(text, &file, origin)?;
    if let Some(key) = KEYS
        .iter()
        .find(|k| k.files == Files::Operator && layer.values.contains_key(k.name))
    {
        let (table, name) = match key.name.split_once('.') {
            Some((t, n)) => (Some(t), n),
            None => (None, key.name),
        };
        let line = line_of(text, table, name)
            .map(|l| format!(", line {l}"))
            .unwrap_or_default();
        return Err(Error::usage(format!(
            "{file}{line}: `{}` is the operator's setting, not a branch's (it reaches past the \
             branch's own bench): remove it from the branch; whoever runs benchctl sets it with \
             {}{}, or a --config file",
            key.name,
            key.flag_text(),
            key.env.map(|v| format!(" or {v}")).unwrap_or_default(),
        )));
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Origin {
        Origin::LocalConfig("l".into())
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key_and_line() {
        let e = parse(
            "port = 8080\n\n[limits]\nmemory = \"1g\"\nspeed = 3\n",
            "benchctl.toml",
            local(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 5") && e.contains("speed"), "{e}");
        let e = parse("port = \"x\"\n", "f", local())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && e.contains("port"), "{e}");
        let e = parse("\n\nspeed = 1\n", "f", local())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("speed"), "{e}");
        let e = parse("port = \n", "f", local()).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("backend = \"k8s\"\n", "f", local())
            .unwrap_err()
            .to_string();
        assert!(e.contains("docker, swarm"), "{e}");
    }

    #[test]
    fn hooks_are_tables_of_tables() {
        let l = parse(
            "[hooks.seed]\nservice = \"db\"\ncommand = \"load\"\ntimeout = 60\n\
             [hooks.release]\nservice = \"web\"\ncommand = \"migrate\"\nrun = \"one-off\"\n",
            "f",
            local(),
        )
        .unwrap();
        assert_eq!(l.values["hooks.seed.service"], "db");
        assert_eq!(l.values["hooks.seed.timeout"], "60");
        assert_eq!(l.values["hooks.release.run"], "one-off");
        let e = parse("[hooks.seed]\nservice = \"db\"\ncolour = 1\n", "f", local())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3") && e.contains("colour"), "{e}");
        let e = parse("[hooks.seed]\nrun = \"ssh\"\n", "f", local())
            .unwrap_err()
            .to_string();
        assert!(e.contains("exec, one-off"), "{e}");
        assert!(parse("[hooks.nightly]\nservice = \"x\"\n", "f", local()).is_err());
    }

    #[test]
    fn tables_become_keys_and_entries() {
        let l = parse(
            "ready-timeout = 5\n[limits]\ncpus = 2.0\npids = 10\n[env]\nA = \"1\"\n\
             [build-args]\nB = \"2\"\n",
            "f",
            local(),
        )
        .unwrap();
        assert_eq!(l.values["ready-timeout"], "5");
        assert_eq!(l.values["limits.cpus"], "2");
        assert_eq!(l.values["limits.pids"], "10");
        assert_eq!(l.values["env.A"], "1");
        assert_eq!(l.values["build-args.B"], "2");
        assert_eq!(l.origins["env.A"], local());
    }

    #[test]
    fn a_branch_may_not_choose_where_benches_run() {
        let e = parse_branch("registry = \"r\"\n", "of branch b at abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`registry`") && e.contains("--registry"), "{e}");
        assert!(parse("registry = \"r\"\n", "f", local()).is_ok());
        for (text, key, line) in [
            ("port = 80\nfield = \"description\"\n", "`field`", "line 2"),
            (
                "\nurl-template = \"http://x\"\n",
                "`url-template`",
                "line 2",
            ),
            ("issue-pattern = \"(X-1)\"\n", "`issue-pattern`", "line 1"),
            (
                "port = 1\n\nmax-memory = \"9g\"\n[env]\nA = \"1\"\n",
                "`max-memory`",
                "line 3",
            ),
        ] {
            let e = parse_branch(text, "of branch b at abc1234")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(key) && e.contains(line) && e.contains("abc1234"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn numbers_at_the_extremes_are_refused_not_wrapped() {
        for text in [
            "ready-timeout = 9223372036854775807\n",
            "ready-timeout = -1\n",
            "ready-timeout = 31536001\n",
            "[limits]\npids = 9223372036854775807\n",
            "[limits]\npids = -5\n",
            "port = 0\n",
            "port = 65536\n",
        ] {
            let e = parse(text, "f", local()).unwrap_err().to_string();
            assert!(e.contains("must be"), "{text}: {e}");
        }
        assert!(parse("ready-timeout = 31536000\n", "f", local()).is_ok());
    }
}
