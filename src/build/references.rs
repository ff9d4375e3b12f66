//! The images a Dockerfile reads, found before it is built, so that `--allow-images` can refuse
//! one the branch may not use: the `# syntax=` frontend, every `FROM` (build arguments declared
//! before the first `FROM` filled in, as the engine does), `COPY --from`/`ADD --from` and
//! `RUN --mount=...,from=` that name an image rather than a stage. What cannot be read for
//! certain (a variable left after substitution, a custom escape character) is refused by the
//! caller rather than guessed.

use super::dockerfile::instructions;
use std::collections::{BTreeMap, HashMap, HashSet};

/// One image a Dockerfile names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The image as written after substitution (`postgres:15`, `${BASE}` when unresolved).
    pub image: String,
    /// Which instruction names it (`FROM`, `COPY --from`, `RUN --mount`, `syntax`).
    pub how: &'static str,
    /// 1-based line of the Dockerfile.
    pub line: usize,
    /// Whether a variable is left in it: the image cannot be known before the build.
    pub unresolved: bool,
}

/// Every image `text` reads, in order; `Err` names what cannot be read here.
pub fn images(text: &str, build_args: &BTreeMap<String, String>) -> Result<Vec<Reference>, String> {
    let ins = instructions(text).ok_or_else(|| {
        "it changes the escape character (`# escape=`), which benchctl does not read; remove \
         the directive"
            .to_string()
    })?;
    let line_of = |start: usize| text[..start].matches('\n').count() + 1;
    let mut out = syntax(text).into_iter().collect::<Vec<_>>();
    let mut globals: HashMap<String, String> = HashMap::new();
    let mut stages: HashSet<String> = HashSet::new();
    let mut seen_from = false;
    for i in &ins {
        let line = line_of(i.start);
        let words: Vec<&str> = i.text.split_whitespace().skip(1).collect();
        match i.keyword.as_str() {
            "ARG" if !seen_from => {
                for w in words.iter().filter(|w| !w.starts_with('\\')) {
                    let (name, default) = w.split_once('=').unwrap_or((w, ""));
                    let value = build_args
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| unquote(default));
                    globals.insert(name.to_string(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let mut rest = words.iter().filter(|w| !w.starts_with("--"));
                let Some(written) = rest.next() else { continue };
                let image = substitute(written, &globals);
                if !stages.contains(&image.to_ascii_lowercase()) {
                    out.push(reference(image, "FROM", line));
                }
                if let (Some(as_), Some(name)) = (rest.next(), rest.next()) {
                    if as_.eq_ignore_ascii_case("as") {
                        stages.insert(name.to_ascii_lowercase());
                    }
                }
            }
            "COPY" | "ADD" => {
                for from in words.iter().filter_map(|w| w.strip_prefix("--from=")) {
                    let from = unquote(from);
                    if !is_stage(&from, &stages) {
                        out.push(reference(from, "COPY --from", line));
                    }
                }
            }
            "RUN" => {
                let mounts = words.iter().filter_map(|w| w.strip_prefix("--mount="));
                for from in
                    mounts.flat_map(|m| m.split(',').filter_map(|o| o.strip_prefix("from=")))
                {
                    let from = unquote(from);
                    if !is_stage(&from, &stages) {
                        out.push(reference(from, "RUN --mount", line));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The most of a Dockerfile read here (the cap on every file read from a branch).
const MAX_DOCKERFILE: u64 = 1024 * 1024;

/// `path`'s text, refused past [`MAX_DOCKERFILE`].
pub fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    file.take(MAX_DOCKERFILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_DOCKERFILE {
        return Err(format!("it is larger than {} KiB", MAX_DOCKERFILE / 1024));
    }
    Ok(text)
}

fn reference(image: String, how: &'static str, line: usize) -> Reference {
    let unresolved = image.contains('$') || image.is_empty();
    Reference {
        image,
        how,
        line,
        unresolved,
    }
}

/// A stage by name, or by index (`COPY --from=0`).
fn is_stage(from: &str, stages: &HashSet<String>) -> bool {
    stages.contains(&from.to_ascii_lowercase()) || from.chars().all(|c| c.is_ascii_digit())
}

fn unquote(s: &str) -> String {
    s.trim_matches(|c| c == '"' || c == '\'').to_string()
}

/// The `# syntax=` parser directive, when the Dockerfile starts with one (directives come
/// before any instruction or other comment).
fn syntax(text: &str) -> Option<Reference> {
    for (n, line) in text.lines().enumerate() {
        let comment = line.trim().strip_prefix('#')?;
        let (key, value) = comment.split_once('=')?;
        if key.trim().eq_ignore_ascii_case("syntax") {
            return Some(reference(value.trim().to_string(), "syntax", n + 1));
        }
    }
    None
}

/// `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` filled in from `vars` (the
/// Dockerfile's rules); an unknown name stays as written, so the caller sees it.
fn substitute(s: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (expr, len) = if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => (&body[..end], end + 2),
                None => return format!("{out}${after}"),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let (name, op) = match expr.find(":-").or_else(|| expr.find(":+")) {
            Some(i) => (&expr[..i], Some((&expr[i..i + 2], &expr[i + 2..]))),
            None => (expr, None),
        };
        let value = vars.get(name).filter(|v| !v.is_empty());
        match (op, value) {
            (Some((":-", word)), None) => out.push_str(word),
            (Some((":+", word)), Some(_)) => out.push_str(word),
            (Some((":+", _)), None) => {}
            (_, Some(v)) => out.push_str(v),
            (None, None) if vars.contains_key(name) => {}
            _ => out.push_str(&rest[pos..pos + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str, args: &[(&str, &str)]) -> Vec<(String, &'static str, usize, bool)> {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        images(text, &args)
            .unwrap()
            .into_iter()
            .map(|r| (r.image, r.how, r.line, r.unresolved))
            .collect()
    }

    #[test]
    fn every_image_a_dockerfile_reads_is_found_and_stages_are_not() {
        let text = "# syntax=docker/dockerfile:1.4\n\
                    ARG BASE=python:3.12\n\
                    FROM ${BASE} AS build\n\
                    RUN --mount=type=cache,target=/c --mount=type=bind,from=internal/tools:1,target=/t true\n\
                    FROM --platform=linux/amd64 scratch\n\
                    COPY --from=build /a /a\n\
                    COPY --from=0 /b /b\n\
                    COPY --from=internal/app:prod /secret /s\n\
                    RUN --mount=type=bind,from=build,target=/x true\n";
        assert_eq!(
            found(text, &[]),
            vec![
                ("docker/dockerfile:1.4".into(), "syntax", 1, false),
                ("python:3.12".into(), "FROM", 3, false),
                ("internal/tools:1".into(), "RUN --mount", 4, false),
                ("scratch".into(), "FROM", 5, false),
                ("internal/app:prod".into(), "COPY --from", 8, false),
            ]
        );
        // a build argument replaces the default, as `--build-arg` does
        let from = found(
            "ARG BASE=python:3.12\nFROM $BASE\n",
            &[("BASE", "benchctl/proj-3:x")],
        );
        assert_eq!(from[0].0, "benchctl/proj-3:x");
        assert_eq!(found("ARG T\nFROM img:${T:-1}\n", &[])[0].0, "img:1");
        // what cannot be known before the build is marked, never guessed
        assert!(found("FROM $NOWHERE\n", &[])[0].3);
        assert!(found("FROM x\nCOPY --from=${S} /a /b\n", &[])[1].3);
        assert!(images("# escape=`\nFROM x\n", &BTreeMap::new()).is_err());
    }
}
