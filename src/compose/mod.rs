//! Benches of several services: a branch's Compose file, read at the branch's head like
//! `benchctl.toml`. [`fate`] says what becomes of every key of the Compose specification and
//! [`audit`] holds a file to it; [`raw`] is the file as written, [`interpolate`] Compose's
//! variable interpolation, [`project`] (with [`service`] and [`runtime`]) the normalised,
//! checked model; [`merge`] puts `include`d files and `extends`ed services together; [`load`] turns a file's text into it, and [`web_service`] says which service
//! is the bench.

pub mod audit;
pub mod fate;
pub mod interpolate;
pub mod merge;
pub mod project;
pub mod raw;
pub mod runtime;
pub mod service;

pub use project::{Cmd, Condition, CopyIn, Inputs, Mount, Project, Service, Source};

/// The largest Compose file read (real ones are a few KiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The YAML reader's bounds: room for what real files do (hundreds of anchors and aliases,
/// `<<` merges everywhere) while a file crafted to expand stays small.
fn budget() -> serde_saphyr::Budget {
    let mut b = serde_saphyr::Budget::default();
    b.max_events = 200_000;
    b.max_aliases = 2_000;
    b.max_anchors = 2_000;
    b.max_nodes = 100_000;
    b.max_depth = 48;
    b.max_documents = 1;
    b.max_merge_keys = 2_000;
    b.max_recorded_anchor_events = 200_000;
    b.max_recorded_anchor_bytes = 4 << 20;
    b.max_total_scalar_bytes = 4 << 20;
    // a shared block aliased from every service is what anchors are for
    b.enforce_alias_anchor_ratio = false;
    b
}

/// Reads YAML within [`budget`]; a breach is said in plain words.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(text: &str, at: &str) -> Result<T, String> {
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget());
    // YAML 1.2 as Compose reads it: `n`, `no`, `on` are strings, and `0400` (a file mode) is
    // kept as written
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let msg = e.to_string();
        let b = budget();
        let plain = [
            (
                "Aliases",
                format!("more than {} aliases (`*name`)", b.max_aliases),
            ),
            (
                "Anchors",
                format!("more than {} anchors (`&name`)", b.max_anchors),
            ),
            ("Events", format!("more than {} YAML events", b.max_events)),
            ("Nodes", format!("more than {} values", b.max_nodes)),
            (
                "Depth",
                format!("nesting deeper than {} levels", b.max_depth),
            ),
            ("Documents", "more than one YAML document".to_string()),
            (
                "MergeKeys",
                format!("more than {} merge keys (`<<`)", b.max_merge_keys),
            ),
            (
                "RecordedAnchor",
                "anchors whose copies add up to too much".to_string(),
            ),
            ("ScalarBytes", "more than 4 MiB of text".to_string()),
        ];
        if msg.contains("budget") || msg.contains("Budget") {
            if let Some((_, what)) = plain.iter().find(|(k, _)| msg.contains(k)) {
                return format!(
                    "{at}: the file has {what}, past what benchctl reads from a branch"
                );
            }
        }
        // the parser's message starts with its own location; keep its first line
        let first = msg
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        format!("{at}, {first}")
    })
}

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
/// abc1234`). Keys the operator has not allowed or benchctl refuses, wrong shapes and refused
/// values are errors naming the file, and the line and key or the service and key; keys
/// ignored with a note become the project's notes.
pub fn load(text: &str, at: &str, inputs: &Inputs) -> Result<Project, String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{at}: {} bytes, more than the {} KiB benchctl reads from a branch",
            text.len(),
            MAX_FILE_BYTES >> 10
        ));
    }
    let tree: audit::Node = parse(text, at)?;
    if !matches!(tree, audit::Node::Map(_)) {
        return Err(format!("{at}: the file is not a mapping of Compose keys"));
    }
    let mut findings = audit::audit(&tree, inputs.allow);
    // the main file's refusals by line, another file's with its name too
    let mut refused = std::mem::take(&mut findings.refused);
    let assembled = if merge::needed(&tree) {
        let a = merge::assemble(&tree, at, inputs)?;
        refused.extend(a.refused);
        findings.notes.extend(a.notes);
        Some(a.tree)
    } else {
        None
    };
    if !refused.is_empty() {
        return Err(format!("{at}:\n  {}", refused.join("\n  ")));
    }
    let model = assembled.as_ref().unwrap_or(&tree);
    let services = model
        .get("services")
        .map(audit::Node::entries)
        .unwrap_or_default();
    if services.len() > MAX_SERVICES {
        return Err(format!(
            "{at}: {} services, more than the {MAX_SERVICES} a bench may have (each gets up to \
             the bench's limits)",
            services.len()
        ));
    }
    let file: raw::File = match &assembled {
        // files put together have no single text: the tree, whose files' shapes were read
        None => parse(text, at)?,
        Some(t) => serde_json::from_value(merge::to_json(t))
            .map_err(|e| format!("{at} with what it includes and extends: {e}"))?,
    };
    let mut project = project::convert(file, inputs).map_err(|e| format!("{at}: {e}"))?;
    let containers: u32 = project.services.values().map(|s| s.replicas).sum();
    if containers as usize > MAX_SERVICES {
        return Err(format!(
            "{at}: {containers} containers (services times their replicas), more than the \
             {MAX_SERVICES} a bench may have (each gets up to the bench's limits)"
        ));
    }
    project.notes = findings.notes;
    project.order = services.iter().map(|(name, _, _)| name.clone()).collect();
    for (name, s) in &project.services {
        if !s.run.dropped_labels.is_empty() {
            project.notes.push(format!(
                "`services.{name}.labels`: {} left off: labels under {} are written by \
                 benchctl, the proxy and the engine only (they find, hide and route benches)",
                s.run
                    .dropped_labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                fate::RESERVED_LABELS.join(", ")
            ));
        }
    }
    Ok(project)
}

/// The most services a bench may have: each gets the bench's limits at most, so the count
/// bounds what one branch takes from the engine.
pub const MAX_SERVICES: usize = 12;

/// Container ports that say "a web page", most likely first: the tie-break between services
/// that publish ports.
const WEB_PORTS: &[u16] = &[80, 8080, 8000, 3000, 5000, 443, 4200, 8443, 8081, 5050];

/// The service that is the bench: `named` (by `benchctl.toml`'s `service`, else the file's
/// `x-benchctl.web`), else the one publishing a port that no other publishing service leads to
/// (a proxy in front of an app in front of a database: the proxy). Several such: the one with
/// the likeliest web port, then the first in the file; the note says so.
pub fn web_service(p: &Project, named: Option<&str>) -> Result<(String, Option<String>), String> {
    let (web, note) = choose_web(p, named)?;
    let one = (p.services[&web].replicas > 1).then(|| {
        format!(
            "the bench's service `{web}` runs one container, not {}: the bench's address is \
             one container's, replaced at each deploy",
            p.services[&web].replicas
        )
    });
    let notes: Vec<String> = note.into_iter().chain(one).collect();
    Ok((web, (!notes.is_empty()).then(|| notes.join("; "))))
}

/// [`web_service`]'s choice.
fn choose_web(p: &Project, named: Option<&str>) -> Result<(String, Option<String>), String> {
    if let Some(n) = named.or(p.web.as_deref()) {
        return match p.services.get(n) {
            Some(_) => Ok((n.to_string(), None)),
            None => Err(format!(
                "the bench's service `{n}` is not a service that runs (services: {})",
                p.services.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let publishing: Vec<&String> = p
        .order
        .iter()
        .filter(|n| p.services.get(*n).is_some_and(|s| !s.ports.is_empty()))
        .collect();
    let fronts: Vec<&String> = publishing
        .iter()
        .copied()
        .filter(|n| !publishing.iter().any(|o| o != n && reaches(p, o, n)))
        .collect();
    let rank = |n: &String| {
        p.services[n]
            .ports
            .iter()
            .filter_map(|port| WEB_PORTS.iter().position(|w| w == port))
            .min()
            .unwrap_or(WEB_PORTS.len())
    };
    match fronts.as_slice() {
        [] => Err(
            "no service publishes a port, so none can be the bench: add `ports` to the web \
             service, or name it with `x-benchctl: { web: <service> }` in the file or \
             `service = \"<name>\"` in benchctl.toml"
                .into(),
        ),
        [one] => Ok(((*one).clone(), None)),
        many => {
            let best = many
                .iter()
                .copied()
                .min_by_key(|n| rank(n))
                .expect("several");
            let why = format!(
                "several services publish ports ({}); the bench is `{best}` (no other leads \
                 to it, and its port looks likeliest to serve a page): name another with \
                 `service = \"<name>\"` in benchctl.toml or `x-benchctl: {{ web: <service> }}`",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok((best.clone(), Some(why)))
        }
    }
}

/// Whether service `from` depends on `to`, directly or through others.
fn reaches(p: &Project, from: &str, to: &str) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        let Some(s) = p.services.get(&n) else {
            continue;
        };
        for d in s.depends_on.keys() {
            if d == to {
                return true;
            }
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
