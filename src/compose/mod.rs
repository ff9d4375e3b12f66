//! Benches of several services: a branch's Compose file, read at the branch's head like
//! `benchctl.toml`. [`raw`] is the file as written (the subset of the Compose specification
//! benchctl runs), [`interpolate`] Compose's variable interpolation, [`project`] the
//! normalised, checked model; [`load`] turns a file's text into it, refusing any key outside
//! the subset with its line, and [`web_service`] says which service is the bench.

pub mod interpolate;
pub mod project;
pub mod raw;

pub use project::{Cmd, Condition, Inputs, Mount, Project, Service};

/// The file names a branch's root is searched for, in the Compose specification's order.
pub const FILE_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// The first of [`FILE_NAMES`] that `exists` says is there.
pub fn find(exists: &dyn Fn(&str) -> bool) -> Option<&'static str> {
    FILE_NAMES.iter().copied().find(|n| exists(n))
}

/// Parses the Compose file `text`; `at` names it in errors (`compose.yaml of branch b at
/// abc1234`). Unknown keys, wrong shapes and refused values are errors naming the file, and
/// the line and key or the service and key.
pub fn load(text: &str, at: &str, inputs: &Inputs) -> Result<Project, String> {
    let parse_err = |e: serde_saphyr::Error| {
        // the parser's message starts with its own location; keep its first line
        let msg = e.to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        format!("{at}, {first}")
    };
    if let Some((key, line, place)) = raw::audit(text).map_err(parse_err)? {
        let allowed = if place == "the top level" {
            raw::TOP_KEYS
        } else {
            raw::SERVICE_KEYS
        };
        return Err(format!(
            "{at}, line {line}: `{key}` in {place} is not something benchctl runs (it takes {} \
             and `x-*` extensions)",
            allowed.join(", ")
        ));
    }
    let file: raw::File = serde_saphyr::from_str(text).map_err(parse_err)?;
    project::convert(file, inputs).map_err(|e| format!("{at}: {e}"))
}

/// The service that is the bench: `named` (by `benchctl.toml`'s `service`, else the file's
/// `x-benchctl.web`), else the only service publishing a port.
pub fn web_service(p: &Project, named: Option<&str>) -> Result<String, String> {
    if let Some(n) = named.or(p.web.as_deref()) {
        return match p.services.get(n) {
            Some(_) => Ok(n.to_string()),
            None => Err(format!(
                "the bench's service `{n}` is not a service that runs (services: {})",
                p.services.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let publishing: Vec<&String> = p
        .services
        .iter()
        .filter(|(_, s)| !s.ports.is_empty())
        .map(|(n, _)| n)
        .collect();
    match publishing.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(
            "no service publishes a port, so none can be the bench: add `ports` to the web \
             service, or name it with `x-benchctl: { web: <service> }` in the file or \
             `service = \"<name>\"` in benchctl.toml"
                .into(),
        ),
        many => Err(format!(
            "several services publish ports ({}); name the bench's with `x-benchctl: {{ web: \
             <service> }}` in the file or `service = \"<name>\"` in benchctl.toml",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests;
