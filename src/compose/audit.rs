//! A Compose file's keys checked against [`super::fate`] before anything is converted: the file
//! is read as a tree that keeps each key's line, and every mapping the specification defines
//! (the top level, services, `build`, `deploy`, networks, volumes, secrets, configs) is walked
//! with its table. Keys the operator has not allowed, keys refused outright and keys the
//! specification does not have are all reported at once, each with its line; ignored keys
//! with a note become notes.

use super::fate::{self, Fate, Switch, Table};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeSet;

/// A YAML node with the line of each mapping key.
#[derive(Debug, Clone)]
pub enum Node {
    Map(Vec<(String, usize, Node)>),
    Seq(Vec<Node>),
    Scalar(String),
    Null,
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// The entries of a mapping (none for anything else).
    pub fn entries(&self) -> &[(String, usize, Node)] {
        match self {
            Node::Map(m) => m,
            _ => &[],
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("YAML")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<serde_saphyr::Spanned<super::raw::Text>>()? {
                    let v: Node = m.next_value()?;
                    out.push((k.value.0, k.referenced.line() as usize, v));
                }
                Ok(Node::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = s.next_element()? {
                    out.push(v);
                }
                Ok(Node::Seq(out))
            }
            fn visit_str<E>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Node, E> {
                Ok(Node::Scalar(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
                Ok(Node::Scalar(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Node, D2::Error> {
                Node::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a file's keys come to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// `line N: `services.web.key`: why` for each key that stops the file.
    pub refused: Vec<String>,
    /// Keys accepted but ignored, with what the file's author should know.
    pub notes: Vec<String>,
}

/// Walks the file's tree `top` with the fate tables; `allow` is what the operator allows.
pub fn audit(top: &Node, allow: &BTreeSet<Switch>) -> Findings {
    let mut f = Findings::default();
    let mut w = Walk { allow, out: &mut f };
    w.table(top, fate::TOP, "");
    if let Some(Node::Seq(entries)) = top.get("include") {
        for e in entries {
            w.table(e, fate::INCLUDE, "include");
        }
    }
    for (name, _, s) in top.get("services").map(Node::entries).unwrap_or_default() {
        let at = format!("services.{name}");
        w.table(s, fate::SERVICE, &at);
        if let Some(e @ Node::Map(_)) = s.get("extends") {
            w.table(e, fate::EXTENDS, &format!("{at}.extends"));
        }
        if let Some(b @ Node::Map(_)) = s.get("build") {
            w.table(b, fate::BUILD, &format!("{at}.build"));
        }
        if let Some(d) = s.get("deploy") {
            w.table(d, fate::DEPLOY, &format!("{at}.deploy"));
            if let Some(r) = d.get("resources") {
                w.table(r, fate::RESOURCES, &format!("{at}.deploy.resources"));
                for kind in ["limits", "reservations"] {
                    if let Some(l) = r.get(kind) {
                        let p = format!("{at}.deploy.resources.{kind}");
                        w.table(l, fate::RESOURCE, &p);
                    }
                }
            }
        }
        if let Some(h) = s.get("healthcheck") {
            w.table(h, fate::HEALTHCHECK, &format!("{at}.healthcheck"));
        }
        for (net, _, n) in s.get("networks").map(Node::entries).unwrap_or_default() {
            w.table(n, fate::SERVICE_NETWORK, &format!("{at}.networks.{net}"));
        }
    }
    for (section, table) in [
        ("networks", fate::NETWORK),
        ("volumes", fate::VOLUME),
        ("secrets", fate::SECRET),
        ("configs", fate::CONFIG),
    ] {
        for (name, _, v) in top.get(section).map(Node::entries).unwrap_or_default() {
            w.table(v, table, &format!("{section}.{name}"));
        }
    }
    f
}

struct Walk<'a> {
    allow: &'a BTreeSet<Switch>,
    out: &'a mut Findings,
}

impl Walk<'_> {
    fn table(&mut self, node: &Node, table: Table, at: &str) {
        for (key, line, value) in node.entries() {
            if key.starts_with("x-") {
                continue;
            }
            let path = if at.is_empty() {
                key.clone()
            } else {
                format!("{at}.{key}")
            };
            let refuse = |why: String| format!("line {line}: `{path}`: {why}");
            match fate::of(table, key) {
                None => self.out.refused.push(refuse(format!(
                    "`{key}` is not a key of the Compose specification here{}",
                    near(table, key)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default()
                ))),
                Some(Fate::Refuse(why)) => self.out.refused.push(refuse(why.to_string())),
                Some(Fate::Operator(s)) if !self.allow.contains(&s) && !off(value) => {
                    self.out.refused.push(refuse(switch_refusal(s)))
                }
                Some(Fate::Ignore(note)) if !note.is_empty() => self
                    .out
                    .notes
                    .push(format!("line {line}: `{path}` is ignored: {note}")),
                Some(_) => {}
            }
        }
    }
}

/// A value that asks for nothing (`privileged: false`, an empty list), which no switch guards.
fn off(v: &Node) -> bool {
    match v {
        Node::Null => true,
        Node::Scalar(s) => s == "false",
        Node::Seq(s) => s.is_empty(),
        Node::Map(m) => m.is_empty(),
    }
}

/// The refusal of something switch `s` guards, naming the switch.
pub fn switch_refusal(s: Switch) -> String {
    format!(
        "it would give the branch {}; refused unless the operator sets `compose-allow = \"{}\"` \
         (README: Security model)",
        s.gives(),
        s.word()
    )
}

/// A key of `table` one edit or a swap away from `key`, for a typo.
fn near(table: Table, key: &str) -> Option<&'static str> {
    table
        .iter()
        .map(|(k, _)| *k)
        .find(|k| strsim::damerau_levenshtein(k, key) <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, allow: &[Switch]) -> Findings {
        let top: Node = super::super::parse(text, "t").unwrap();
        audit(&top, &allow.iter().copied().collect())
    }

    #[test]
    fn refusals_name_line_key_reason_and_switch() {
        let f = run(
            "services:\n  a:\n    image: x\n    privileged: true\n    contianer_name: y\n    \
             logging: {driver: syslog}\n    x-own: 1\n",
            &[],
        );
        assert_eq!(f.refused.len(), 2, "{f:?}");
        assert!(
            f.refused[0].starts_with("line 4: `services.a.privileged`"),
            "{f:?}"
        );
        assert!(
            f.refused[0].contains("compose-allow = \"privileged\""),
            "{f:?}"
        );
        assert!(
            f.refused[1].contains("did you mean `container_name`"),
            "{f:?}"
        );
        assert_eq!(f.notes.len(), 1);
        assert!(f.notes[0].contains("services.a.logging"), "{f:?}");
        let f = run(
            "services:\n  a:\n    image: x\n    privileged: true\n",
            &[Switch::Privileged],
        );
        assert!(f.refused.is_empty(), "{f:?}");
        let f = run(
            "services:\n  a:\n    image: x\n    privileged: false\n",
            &[],
        );
        assert!(f.refused.is_empty(), "{f:?}");
    }

    #[test]
    fn nested_tables_are_walked() {
        let f = run(
            "services:\n  a:\n    build: {context: ., ssh: [default]}\n    deploy:\n      \
             resources:\n        reservations:\n          devices: [{capabilities: [gpu]}]\n\
             networks:\n  n: {external: true}\nvolumes:\n  v: {driver_opts: {device: /}}\n",
            &[],
        );
        let all = f.refused.join("\n");
        for part in [
            "services.a.build.ssh",
            "services.a.deploy.resources.reservations.devices",
            "networks.n.external",
            "volumes.v.driver_opts",
        ] {
            assert!(all.contains(part), "{part} in {all}");
        }
    }
}
