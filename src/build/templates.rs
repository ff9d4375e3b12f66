//! Dockerfile templates for branches without a Dockerfile: chosen by what the branch holds
//! (or by `--template`), kept as plain files in `templates/dockerfiles/<name>/Dockerfile`
//! (built in) and overridable or extendable in a user's directory
//! (`$BENCHCTL_TEMPLATES_DIR/dockerfiles/<name>/Dockerfile`).

use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// A built-in template: its name, the root files that choose it (first match wins, in this
/// order), and its Dockerfile.
struct Builtin {
    name: &'static str,
    files: &'static [&'static str],
    dockerfile: &'static str,
}

const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "rust",
        files: &["Cargo.toml"],
        dockerfile: include_str!("../../templates/dockerfiles/rust/Dockerfile"),
    },
    Builtin {
        name: "node",
        files: &["package.json"],
        dockerfile: include_str!("../../templates/dockerfiles/node/Dockerfile"),
    },
    Builtin {
        name: "python",
        files: &["pyproject.toml", "requirements.txt"],
        dockerfile: include_str!("../../templates/dockerfiles/python/Dockerfile"),
    },
    Builtin {
        name: "go",
        files: &["go.mod"],
        dockerfile: include_str!("../../templates/dockerfiles/go/Dockerfile"),
    },
    Builtin {
        name: "static",
        files: &["index.html"],
        dockerfile: include_str!("../../templates/dockerfiles/static/Dockerfile"),
    },
];

/// The template a build uses, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chosen {
    pub name: String,
    pub reason: String,
    /// Where its Dockerfile came from (`built in` or a path).
    pub source: String,
    #[serde(skip)]
    pub dockerfile: String,
}

/// The template for a branch whose root holds `files` (`None`: none fits).
pub fn detect(files: &[String]) -> Option<(&'static str, String)> {
    BUILTIN.iter().find_map(|t| {
        t.files
            .iter()
            .find(|f| files.iter().any(|have| have == *f))
            .map(|f| (t.name, format!("the branch has no Dockerfile and has {f}")))
    })
}

fn user_file(dir: Option<&Path>, name: &str) -> Option<std::path::PathBuf> {
    let p = dir?.join("dockerfiles").join(name).join("Dockerfile");
    p.is_file().then_some(p)
}

/// Loads template `name`: the user's directory first, else the built-in one.
pub fn load(name: &str, dir: Option<&Path>, reason: String) -> Result<Chosen> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        if let Some(p) = user_file(dir, name) {
            let dockerfile = std::fs::read_to_string(&p).map_err(|e| {
                Error::usage(format!("cannot read template `{}`: {e}", p.display()))
            })?;
            return Ok(Chosen {
                name: name.to_string(),
                reason,
                source: p.display().to_string(),
                dockerfile,
            });
        }
        if let Some(t) = BUILTIN.iter().find(|t| t.name == name) {
            return Ok(Chosen {
                name: name.to_string(),
                reason,
                source: "built in".into(),
                dockerfile: t.dockerfile.to_string(),
            });
        }
    }
    Err(Error::usage(format!(
        "there is no template `{}`; `benchctl templates` lists them",
        name.escape_debug()
    )))
}

/// One line of `benchctl templates`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Listed {
    pub name: String,
    /// Root files that choose it for a branch without a Dockerfile (empty: only by name).
    pub chosen_by: Vec<String>,
    /// The images it builds `FROM`.
    pub base_images: Vec<String>,
    pub source: String,
}

fn base_images(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words
                .next()
                .filter(|w| w.eq_ignore_ascii_case("FROM"))
                .and_then(|_| words.next())
                .map(str::to_string)
        })
        .collect()
}

/// Every template: built-in ones (overridden where the user's directory has the same name),
/// then the user's own.
pub fn list(dir: Option<&Path>) -> Vec<Listed> {
    let mut out: Vec<Listed> = BUILTIN
        .iter()
        .map(|t| {
            let user = user_file(dir, t.name);
            let text = user
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_else(|| t.dockerfile.to_string());
            Listed {
                name: t.name.to_string(),
                chosen_by: t.files.iter().map(|f| f.to_string()).collect(),
                base_images: base_images(&text),
                source: user.map_or("built in".into(), |p| p.display().to_string()),
            }
        })
        .collect();
    if let Some(Ok(entries)) = dir.map(|d| std::fs::read_dir(d.join("dockerfiles"))) {
        let mut extra: Vec<Listed> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = user_file(dir, &name)?;
                if BUILTIN.iter().any(|t| t.name == name) {
                    return None;
                }
                Some(Listed {
                    name,
                    chosen_by: Vec::new(),
                    base_images: base_images(&std::fs::read_to_string(&p).ok()?),
                    source: p.display().to_string(),
                })
            })
            .collect();
        extra.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(extra);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detection_follows_what_the_branch_holds() {
        assert_eq!(
            detect(&files(&["Cargo.toml", "README.md"])).unwrap().0,
            "rust"
        );
        assert_eq!(
            detect(&files(&["package.json", "index.html"])).unwrap().0,
            "node"
        );
        assert_eq!(detect(&files(&["requirements.txt"])).unwrap().0, "python");
        assert_eq!(detect(&files(&["pyproject.toml"])).unwrap().0, "python");
        assert_eq!(detect(&files(&["go.mod", "main.go"])).unwrap().0, "go");
        let (name, why) = detect(&files(&["index.html", "style.css"])).unwrap();
        assert_eq!(name, "static");
        assert!(why.contains("index.html"));
        assert_eq!(detect(&files(&["README.md"])), None);
    }

    #[test]
    fn every_builtin_uses_an_official_base_and_exposes_a_port() {
        for t in list(None) {
            let c = load(&t.name, None, String::new()).unwrap();
            assert!(!t.base_images.is_empty(), "{}", t.name);
            assert!(c.dockerfile.contains("EXPOSE"), "{}", t.name);
        }
        assert!(load("cobol", None, String::new()).is_err());
        assert!(load("../x", None, String::new()).is_err());
    }
}
