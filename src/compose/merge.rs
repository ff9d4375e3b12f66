//! `include` and `extends`: the other Compose files and services a file builds on, put together
//! on the YAML tree before conversion, by the Compose specification's rules:
//! - `include` (14-include.md): each included file is a model of its own whose relative paths
//!   are its own directory's (or its `project_directory`'s), and whose resources are copied in;
//!   a name two files define differently is an error.
//! - `extends` (05-services.md): a base service, of this file or another, with the local
//!   service merged over it; the base's own `extends` first.
//! - merging (13-merge.md): mappings merged, sequences appended, `command`, `entrypoint` and
//!   `healthcheck.test` replaced, `volumes`, `secrets` and `configs` unique by target, short
//!   forms expanded first.
//!
//! Every file is read from the branch and audited with its own name and lines: an included
//! file whole, an extended file for the service taken from it. Files, depth and size are
//! bounded. Paths of a file in another directory are rebased onto the main file's directory,
//! where the conversion reads them.

use super::audit::{self, Node};
use super::project::{inside, Inputs};
use std::collections::{BTreeMap, BTreeSet};

/// Most files a bench's Compose model reads, the main one with them.
pub const MAX_FILES: usize = 16;
/// The longest chain of `include` inside `include`, or of `extends` on `extends`.
pub const MAX_DEPTH: usize = 8;

/// What the files came to: one tree, and what the audits of the other files found.
pub struct Assembled {
    pub tree: Node,
    pub refused: Vec<String>,
    pub notes: Vec<String>,
}

/// Whether `tree` builds on other files or services.
pub fn needed(tree: &Node) -> bool {
    tree.get("include").is_some()
        || services(tree)
            .iter()
            .any(|(_, _, s)| s.get("extends").is_some())
}

/// Puts the main file `tree` (named `at` in errors) together with what it includes and
/// extends. Errors are the file's shape (a missing service, a cycle, a conflict, a bound).
pub fn assemble(tree: &Node, at: &str, inputs: &Inputs) -> Result<Assembled, String> {
    let mut f = Files {
        inputs,
        main_at: at.to_string(),
        trees: BTreeMap::new(),
        audited: BTreeSet::new(),
        refused: Vec::new(),
        notes: Vec::new(),
        reads: 1,
        including: Vec::new(),
    };
    let main = Key {
        file: String::new(),
        dir: inputs.dir.to_string(),
    };
    f.trees.insert(main.clone(), tree.clone());
    f.audited.insert(main.file.clone());
    let tree = f.model(&main, 0)?;
    Ok(Assembled {
        tree,
        refused: f.refused,
        notes: f.notes,
    })
}

/// A file as read: its path from the branch's root (empty for the main file) and the
/// directory its relative paths start from.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    file: String,
    dir: String,
}

struct Files<'a> {
    inputs: &'a Inputs<'a>,
    main_at: String,
    /// Each file read, its paths already rebased onto the main file's directory.
    trees: BTreeMap<Key, Node>,
    /// Files audited whole (the main one and included ones).
    audited: BTreeSet<String>,
    refused: Vec<String>,
    notes: Vec<String>,
    reads: usize,
    /// The files being included, outermost first, to find a circle.
    including: Vec<String>,
}

impl Files<'_> {
    /// How errors name file `k`.
    fn at(&self, k: &Key) -> String {
        if k.file.is_empty() {
            self.main_at.clone()
        } else {
            format!("{} (from {})", k.file, self.main_at)
        }
    }

    /// The tree of `k`, read once.
    fn tree(&mut self, k: &Key) -> Result<Node, String> {
        if let Some(t) = self.trees.get(k) {
            return Ok(t.clone());
        }
        self.reads += 1;
        if self.reads > MAX_FILES {
            return Err(format!(
                "{}: more than {MAX_FILES} Compose files through `include` and `extends`, past \
                 what benchctl reads from a branch",
                self.main_at
            ));
        }
        let at = self.at(k);
        let text = (self.inputs.read)(&k.file).map_err(|e| format!("{at}: {e}"))?;
        if text.len() > super::MAX_FILE_BYTES {
            return Err(format!(
                "{at}: {} bytes, more than the {} KiB benchctl reads from a branch",
                text.len(),
                super::MAX_FILE_BYTES >> 10
            ));
        }
        let mut tree: Node = super::parse(&text, &at)?;
        if !matches!(tree, Node::Map(_)) {
            return Err(format!("{at}: the file is not a mapping of Compose keys"));
        }
        let rebase = Rebase {
            from: &k.dir,
            to: self.inputs.dir,
            at: &at,
        };
        rebase.file(&mut tree)?;
        self.trees.insert(k.clone(), tree.clone());
        Ok(tree)
    }

    /// Records what an audit of `node` (a whole file, or one service in a file) found.
    fn audit(&mut self, k: &Key, node: &Node) {
        let found = audit::audit(node, self.inputs.allow);
        let at = self.at(k);
        for r in found.refused {
            let line = format!("{at}: {r}");
            if !self.refused.contains(&line) {
                self.refused.push(line);
            }
        }
        for n in found.notes {
            let line = format!("{at}: {n}");
            if !self.notes.contains(&line) {
                self.notes.push(line);
            }
        }
    }

    /// File `k` as a model: its services' `extends` resolved and its includes copied in.
    fn model(&mut self, k: &Key, depth: usize) -> Result<Node, String> {
        if self.including.contains(&k.file) {
            return Err(format!(
                "`include` goes round in a circle: {} -> {}",
                self.including.join(" -> "),
                k.file
            ));
        }
        let tree = self.tree(k)?;
        if !k.file.is_empty() && self.audited.insert(k.file.clone()) {
            self.audit(k, &tree);
        }
        self.including.push(k.file.clone());
        let out = self.resolve(k, &tree, depth);
        self.including.pop();
        out
    }

    /// The body of [`Self::model`].
    fn resolve(&mut self, k: &Key, tree: &Node, depth: usize) -> Result<Node, String> {
        let mut out = without(tree, "include");
        let mut resolved = Vec::new();
        for (name, line, _) in services(tree) {
            let s = self.service(k, name, &mut Vec::new())?;
            resolved.push((name.clone(), *line, s));
        }
        if !resolved.is_empty() {
            set(&mut out, "services", Node::Map(resolved));
        }
        let at = self.at(k);
        for entry in seq(tree.get("include")) {
            if depth + 1 > MAX_DEPTH {
                return Err(format!(
                    "{at}: `include` nested deeper than {MAX_DEPTH} files"
                ));
            }
            let model = self.included(k, entry, depth + 1)?;
            import(&mut out, &model, &at)?;
        }
        Ok(out)
    }

    /// One `include` entry of file `k`: its files merged in order, as one model.
    fn included(&mut self, k: &Key, entry: &Node, depth: usize) -> Result<Node, String> {
        let at = self.at(k);
        let (paths, project_dir) = match entry {
            Node::Scalar(p) => (vec![p.clone()], None),
            Node::Map(_) => {
                let paths = match entry.get("path") {
                    Some(Node::Scalar(p)) => vec![p.clone()],
                    Some(Node::Seq(ps)) => ps.iter().filter_map(scalar).collect(),
                    _ => Vec::new(),
                };
                (paths, entry.get("project_directory").and_then(scalar))
            }
            _ => (Vec::new(), None),
        };
        if paths.is_empty() {
            return Err(format!("{at}: an `include` entry without a `path`"));
        }
        // paths were rebased onto the main file's directory when `k` was read
        let root = |p: &str| {
            inside(self.inputs.dir, p)
                .ok_or_else(|| format!("{at}: `include` of `{p}`, which is outside the branch"))
        };
        let dir = match &project_dir {
            Some(d) => root(d)?,
            None => parent(&root(&paths[0])?),
        };
        let mut merged: Option<Node> = None;
        for p in &paths {
            let key = Key {
                file: root(p)?,
                dir: dir.clone(),
            };
            let m = self.model(&key, depth)?;
            merged = Some(match merged {
                None => m,
                Some(base) => merge_models(&base, &m),
            });
        }
        Ok(merged.expect("at least one path"))
    }

    /// Service `name` of file `k`, its `extends` resolved; `chain` holds the services on the
    /// way, to find a cycle.
    fn service(&mut self, k: &Key, name: &str, chain: &mut Vec<String>) -> Result<Node, String> {
        let at = self.at(k);
        let id = format!("{at}: `services.{name}`");
        if chain.contains(&id) {
            chain.push(id);
            return Err(format!(
                "`extends` goes round in a circle: {}",
                chain.join(" -> ")
            ));
        }
        if chain.len() >= MAX_DEPTH {
            return Err(format!(
                "{id}: `extends` chained deeper than {MAX_DEPTH} services"
            ));
        }
        let tree = self.tree(k)?;
        let Some(node) = services(&tree)
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, s)| s.clone())
        else {
            return Err(format!("{at}: there is no service `{name}` to extend"));
        };
        if !self.audited.contains(&k.file) {
            let one = Node::Map(vec![(
                "services".into(),
                0,
                Node::Map(vec![(name.to_string(), 0, node.clone())]),
            )]);
            self.audit(k, &one);
        }
        let Some(ext) = node.get("extends") else {
            return Ok(node);
        };
        let (file, base) = match ext {
            Node::Scalar(s) => (None, s.clone()),
            Node::Map(_) => (
                ext.get("file").and_then(scalar),
                ext.get("service")
                    .and_then(scalar)
                    .ok_or_else(|| format!("{id}: `extends` without a `service`"))?,
            ),
            _ => return Err(format!("{id}: `extends` is a service name or a mapping")),
        };
        let from = match file {
            None => k.clone(),
            Some(f) => {
                let file = inside(self.inputs.dir, &f)
                    .ok_or_else(|| format!("{id}: `extends.file` `{f}` is outside the branch"))?;
                Key {
                    dir: parent(&file),
                    file,
                }
            }
        };
        chain.push(id);
        let base = self.service(&from, &base, chain)?;
        chain.pop();
        Ok(merge_service(&base, &without(&node, "extends")))
    }
}

/// Copies the resources of an included model into `out`; a name both define differently is
/// an error (Compose does not merge included resources).
fn import(out: &mut Node, model: &Node, at: &str) -> Result<(), String> {
    for section in ["services", "networks", "volumes", "secrets", "configs"] {
        let Some(Node::Map(theirs)) = model.get(section) else {
            continue;
        };
        let mut ours = out
            .get(section)
            .map(|n| n.entries().to_vec())
            .unwrap_or_default();
        for (name, line, node) in theirs {
            match ours.iter().find(|(n, _, _)| n == name) {
                Some((_, _, mine)) if same(mine, node) => {}
                Some(_) => {
                    return Err(format!(
                        "{at}: `{section}.{name}` is defined both here and in an included file; \
                         Compose does not merge included resources: rename one"
                    ))
                }
                None => ours.push((name.clone(), *line, node.clone())),
            }
        }
        set(out, section, Node::Map(ours));
    }
    Ok(())
}

/// Several files of one `include` entry, the later over the earlier.
fn merge_models(base: &Node, over: &Node) -> Node {
    let mut out = base.clone();
    for (key, _, value) in over.entries() {
        let merged = match (key.as_str(), base.get(key)) {
            ("services", Some(b)) => {
                let mut all = b.entries().to_vec();
                for (name, line, s) in value.entries() {
                    match all.iter_mut().find(|(n, _, _)| n == name) {
                        Some(slot) => slot.2 = merge_service(&slot.2, s),
                        None => all.push((name.clone(), *line, s.clone())),
                    }
                }
                Node::Map(all)
            }
            (_, Some(b)) => merge(b, value),
            (_, None) => value.clone(),
        };
        set(&mut out, key, merged);
    }
    out
}

/// Service `over` merged over service `base` (13-merge.md).
pub fn merge_service(base: &Node, over: &Node) -> Node {
    let mut out = base.clone();
    for (key, _, value) in over.entries() {
        let merged = match (key.as_str(), base.get(key)) {
            (_, None) | ("command" | "entrypoint", _) => value.clone(),
            ("volumes" | "secrets" | "configs", Some(b)) => by_target(key, b, value),
            ("environment" | "labels" | "annotations" | "sysctls", Some(b)) => {
                merge(&as_map(b), &as_map(value))
            }
            ("depends_on" | "networks", Some(b)) => merge(&named(b), &named(value)),
            ("build", Some(b)) => {
                let (b, v) = (as_build(b), as_build(value));
                let mut m = merge(&without(&b, "args"), &without(&v, "args"));
                if b.get("args").is_some() || v.get("args").is_some() {
                    let args = merge(
                        &as_map(b.get("args").unwrap_or(&Node::Null)),
                        &as_map(v.get("args").unwrap_or(&Node::Null)),
                    );
                    set(&mut m, "args", args);
                }
                m
            }
            ("healthcheck", Some(b)) => {
                let mut m = merge(&without(b, "test"), &without(value, "test"));
                if let Some(t) = value.get("test").or(b.get("test")) {
                    set(&mut m, "test", t.clone());
                }
                m
            }
            (_, Some(b)) => merge(b, value),
        };
        set(&mut out, key, merged);
    }
    out
}

/// The generic rule: mappings merged key by key, sequences appended (an entry already there
/// is not repeated), anything else replaced.
fn merge(base: &Node, over: &Node) -> Node {
    match (base, over) {
        (Node::Map(_), Node::Map(o)) => {
            let mut out = base.clone();
            for (k, _, v) in o {
                let m = match base.get(k) {
                    Some(b) => merge(b, v),
                    None => v.clone(),
                };
                set(&mut out, k, m);
            }
            out
        }
        (Node::Seq(b), Node::Seq(o)) => {
            let mut out = b.clone();
            for v in o {
                if !out.iter().any(|x| same(x, v)) {
                    out.push(v.clone());
                }
            }
            Node::Seq(out)
        }
        _ => over.clone(),
    }
}

/// `volumes`, `secrets` or `configs`: an entry of `over` replaces the base's entry with the
/// same target, others are appended.
fn by_target(what: &str, base: &Node, over: &Node) -> Node {
    let target = |n: &Node| -> Option<String> {
        match n {
            Node::Scalar(s) if what == "volumes" => {
                let parts: Vec<&str> = s.split(':').collect();
                Some(parts.get(1).unwrap_or(&parts[0]).to_string())
            }
            Node::Scalar(s) => Some(s.clone()),
            Node::Map(_) => n.get("target").or(n.get("source")).and_then(scalar),
            _ => None,
        }
    };
    let mut out: Vec<Node> = seq(Some(base)).to_vec();
    for v in seq(Some(over)) {
        let t = target(v);
        match out.iter_mut().find(|x| t.is_some() && target(x) == t) {
            Some(slot) => *slot = v.clone(),
            None => out.push(v.clone()),
        }
    }
    Node::Seq(out)
}

/// A list of `KEY=value` (or `KEY`) as the mapping it stands for.
fn as_map(n: &Node) -> Node {
    match n {
        Node::Seq(items) => Node::Map(
            items
                .iter()
                .filter_map(scalar)
                .map(|s| match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), 0, Node::Scalar(v.to_string())),
                    None => (s, 0, Node::Null),
                })
                .collect(),
        ),
        _ => n.clone(),
    }
}

/// A list of names (`depends_on`, `networks`) as a mapping by name.
fn named(n: &Node) -> Node {
    match n {
        Node::Seq(items) => Node::Map(
            items
                .iter()
                .filter_map(scalar)
                .map(|s| (s, 0, Node::Null))
                .collect(),
        ),
        _ => n.clone(),
    }
}

/// `build: ./dir` as `build: {context: ./dir}`.
fn as_build(n: &Node) -> Node {
    match n {
        Node::Scalar(s) => Node::Map(vec![("context".into(), 0, Node::Scalar(s.clone()))]),
        _ => n.clone(),
    }
}

/// Equal as YAML, lines aside.
fn same(a: &Node, b: &Node) -> bool {
    match (a, b) {
        (Node::Map(x), Node::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, _, v1), (k2, _, v2))| k1 == k2 && same(v1, v2))
        }
        (Node::Seq(x), Node::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Node::Scalar(x), Node::Scalar(y)) => x == y,
        (Node::Null, Node::Null) => true,
        _ => false,
    }
}

/// Rewrites the relative paths of a file read from directory `from` so that they start from
/// `to`, the main file's directory, where the conversion resolves them.
struct Rebase<'a> {
    from: &'a str,
    to: &'a str,
    at: &'a str,
}

impl Rebase<'_> {
    fn file(&self, tree: &mut Node) -> Result<(), String> {
        if self.from == self.to {
            return Ok(());
        }
        if let Some(Node::Seq(items)) = child(tree, "include") {
            for item in items {
                match item {
                    Node::Scalar(p) => *p = self.path(p)?,
                    Node::Map(_) => {
                        for key in ["path", "project_directory"] {
                            self.scalars(child(item, key))?;
                        }
                    }
                    _ => {}
                }
            }
        }
        for section in ["secrets", "configs"] {
            if let Some(Node::Map(entries)) = child(tree, section) {
                for (_, _, e) in entries {
                    self.scalars(child(e, "file"))?;
                }
            }
        }
        if let Some(Node::Map(services)) = child(tree, "services") {
            for (_, _, s) in services {
                self.service(s)?;
            }
        }
        Ok(())
    }

    fn service(&self, s: &mut Node) -> Result<(), String> {
        match child(s, "build") {
            Some(Node::Scalar(p)) => *p = self.path(p)?,
            Some(b @ Node::Map(_)) => match child(b, "context") {
                Some(Node::Scalar(p)) => *p = self.path(p)?,
                Some(_) => {}
                None => set(b, "context", Node::Scalar(self.path(".")?)),
            },
            _ => {}
        }
        for key in ["env_file", "label_file"] {
            match child(s, key) {
                Some(Node::Seq(items)) => {
                    for i in items {
                        match i {
                            Node::Map(_) => self.scalars(child(i, "path"))?,
                            other => self.scalars(Some(other))?,
                        }
                    }
                }
                other => self.scalars(other)?,
            }
        }
        if let Some(Node::Map(_)) = s.get("extends") {
            self.scalars(child(child(s, "extends").expect("there"), "file"))?;
        }
        if let Some(Node::Seq(vols)) = child(s, "volumes") {
            for v in vols {
                self.volume(v)?;
            }
        }
        Ok(())
    }

    fn volume(&self, v: &mut Node) -> Result<(), String> {
        match v {
            Node::Scalar(s) if s.starts_with('.') => {
                let (src, rest) = s.split_once(':').unwrap_or((s.as_str(), ""));
                let src = self.path(src)?;
                *s = if rest.is_empty() {
                    src
                } else {
                    format!("{src}:{rest}")
                };
            }
            Node::Map(_) if v.get("type").and_then(scalar).as_deref() == Some("bind") => {
                if let Some(Node::Scalar(p)) = child(v, "source") {
                    if !p.starts_with('/') && !p.starts_with('~') {
                        *p = self.path(p)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn scalars(&self, n: Option<&mut Node>) -> Result<(), String> {
        if let Some(Node::Scalar(p)) = n {
            *p = self.path(p)?;
        }
        Ok(())
    }

    /// `p`, relative to `from`, as a path relative to `to` (`./…` or `../…`); absolute, home
    /// and remote paths are left as they are.
    fn path(&self, p: &str) -> Result<String, String> {
        if p.starts_with('/') || p.starts_with('~') || p.contains("://") || p.starts_with("git@") {
            return Ok(p.to_string());
        }
        let root = inside(self.from, p)
            .ok_or_else(|| format!("{}: `{p}` leads out of the branch", self.at))?;
        Ok(relative(self.to, &root))
    }
}

/// Path `root` (from the branch's root) as seen from directory `dir`.
fn relative(dir: &str, root: &str) -> String {
    let d: Vec<&str> = dir
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let r: Vec<&str> = root
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let common = d.iter().zip(&r).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; d.len() - common];
    parts.extend(&r[common..]);
    match parts.first() {
        None => ".".into(),
        Some(&"..") => parts.join("/"),
        Some(_) => format!("./{}", parts.join("/")),
    }
}

/// The directory of a path from the branch's root.
fn parent(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(d, _)| d.to_string())
        .unwrap_or_default()
}

fn services(tree: &Node) -> &[(String, usize, Node)] {
    tree.get("services").map(Node::entries).unwrap_or_default()
}

fn seq(n: Option<&Node>) -> &[Node] {
    match n {
        Some(Node::Seq(s)) => s,
        _ => &[],
    }
}

fn scalar(n: &Node) -> Option<String> {
    match n {
        Node::Scalar(s) => Some(s.clone()),
        _ => None,
    }
}

fn child<'n>(n: &'n mut Node, key: &str) -> Option<&'n mut Node> {
    match n {
        Node::Map(m) => m.iter_mut().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
        _ => None,
    }
}

fn without(n: &Node, key: &str) -> Node {
    match n {
        Node::Map(m) => Node::Map(m.iter().filter(|(k, _, _)| k != key).cloned().collect()),
        other => other.clone(),
    }
}

/// Sets `key` of mapping `n`, in place when it is there, else at the end.
fn set(n: &mut Node, key: &str, value: Node) {
    if let Node::Map(m) = n {
        match m.iter_mut().find(|(k, _, _)| k == key) {
            Some(slot) => slot.2 = value,
            None => m.push((key.to_string(), 0, value)),
        }
    }
}

/// The tree as JSON, every scalar a string (as the raw model reads them), to convert.
pub fn to_json(n: &Node) -> serde_json::Value {
    use serde_json::Value;
    match n {
        Node::Map(m) => Value::Object(m.iter().map(|(k, _, v)| (k.clone(), to_json(v))).collect()),
        Node::Seq(s) => Value::Array(s.iter().map(to_json).collect()),
        Node::Scalar(s) => Value::String(s.clone()),
        Node::Null => Value::Null,
    }
}

#[cfg(test)]
mod tests;
