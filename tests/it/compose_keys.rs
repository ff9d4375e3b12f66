//! The keys real files use (run as written or mapped onto the bench) against Compose itself:
//! for a file with each of them, benchctl's model equals what Debian's `docker-compose` 1.29
//! makes of it (`docker-compose config`), projected onto the same canonical JSON — for the keys
//! v1 knows. Names a service answers to (`container_name`, `hostname`, network aliases, links)
//! are compared as the sets benchctl gives each network.

use crate::compose::{docker_compose_config, text, ENV};
use benchctl::compose::{self, Inputs, Project, Source};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const FILE: &str = r#"
services:
  web:
    image: "busybox:${TAG}"
    container_name: the-web
    hostname: web1
    domainname: example.test
    labels: ["team=${TAG}", "tier=front"]
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    init: true
    tty: true
    stdin_open: true
    read_only: true
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    sysctls: {net.core.somaxconn: 1024}
    extra_hosts: ["db.local:10.0.0.1"]
    dns: [10.0.0.2]
    dns_search: [example.test]
    cap_add: [CHOWN]
    cap_drop: [KILL]
    group_add: ["100"]
    networks:
      front: {aliases: [www]}
      back:
    links: ["db:database"]
    secrets: [db-password, {source: api-key, target: key}]
  db:
    image: busybox
    networks: [back]
    labels: {role: db}
networks:
  front:
  back: {internal: true}
secrets:
  db-password: {file: ./db/password.txt}
  api-key: {file: ./key.txt}
"#;

/// benchctl's model of `text` (named `name`), its files read from `dir`, with the tests'
/// environment ([`ENV`]).
fn load_in(dir: &Path, text: &str, name: &str) -> Project {
    let env: BTreeMap<&str, &str> = ENV.iter().copied().collect();
    let lookup = |n: &str| env.get(n).map(|v| v.to_string());
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string());
    let allow = Default::default();
    let inputs = Inputs {
        env: &lookup,
        read: &read,
        dir: "",
        profiles: &[],
        allow: &allow,
        cap_add: &[],
        max_replicas: 3,
    };
    compose::load(text, name, &inputs).unwrap()
}

/// Seconds of a duration.
fn secs(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// benchctl's model as the canonical JSON.
fn ours(p: &Project) -> Value {
    let mut services = Map::new();
    for (name, s) in &p.services {
        let c = &s.run.container;
        let secrets: BTreeMap<String, String> = s
            .copies
            .iter()
            .map(|c| match &c.from {
                Source::Branch(path) => (c.target.clone(), path.clone()),
                Source::Text(t) => (c.target.clone(), t.clone()),
            })
            .collect();
        services.insert(
            name.clone(),
            json!({
                "hostname": c.hostname, "domainname": c.domainname, "labels": s.run.labels,
                "stop_signal": c.stop_signal, "stop_grace_period": secs(c.stop_timeout),
                "init": c.init, "tty": c.tty, "stdin_open": c.open_stdin,
                "read_only": c.read_only,
                "ulimits": c.ulimits.iter().map(|(n, s, h)| (n.clone(), json!([s, h])))
                    .collect::<Map<_, _>>(),
                "sysctls": c.sysctls.iter().map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<Map<_, _>>(),
                "extra_hosts": c.extra_hosts, "dns": c.dns, "dns_search": c.dns_search,
                "cap_add": s.run.cap_add, "cap_drop": c.cap_drop, "group_add": c.group_add,
                "networks": s.networks.iter()
                    .map(|(n, a)| (n.clone(), json!(a.iter().collect::<BTreeSet<_>>())))
                    .collect::<Map<_, _>>(),
                "secrets": secrets,
            }),
        );
    }
    let networks: Map<String, Value> = p
        .networks
        .iter()
        .map(|(n, net)| (n.clone(), json!(net.internal)))
        .collect();
    json!({ "services": services, "networks": networks })
}

/// A list of strings, or one string as a list.
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(v) => text(v).into_iter().collect(),
    }
}

/// `key=value` entries or a map, as a map.
fn pairs(v: Option<&Value>) -> Map<String, Value> {
    match v {
        Some(Value::Object(o)) => o
            .iter()
            .map(|(k, v)| (k.clone(), json!(text(v).unwrap_or_default())))
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(text)
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((&e, ""));
                (k.to_string(), json!(v))
            })
            .collect(),
        _ => Map::new(),
    }
}

/// The names service `name` answers to on each network: v1's aliases, with `container_name`,
/// `hostname` and the aliases other services' links give it.
fn names(all: &Map<String, Value>, name: &str, s: &Value) -> Map<String, Value> {
    let mut common: BTreeSet<String> = BTreeSet::new();
    common.extend(s.get("container_name").and_then(text));
    common.extend(s.get("hostname").and_then(text));
    for other in all.values() {
        for l in strings(other.get("links")) {
            if let Some((target, alias)) = l.split_once(':') {
                if target == name {
                    common.insert(alias.to_string());
                }
            }
        }
    }
    let nets = s
        .get("networks")
        .cloned()
        .unwrap_or(json!({"default": null}));
    let nets: Vec<(String, Value)> = match nets {
        Value::Array(a) => a
            .iter()
            .filter_map(text)
            .map(|n| (n, Value::Null))
            .collect(),
        Value::Object(o) => o.into_iter().collect(),
        _ => Vec::new(),
    };
    nets.into_iter()
        .map(|(n, e)| {
            let mut a = common.clone();
            a.extend(strings(e.get("aliases")));
            (n, json!(a))
        })
        .collect()
}

/// `docker-compose config`'s output as the canonical JSON (`root` is the project directory).
fn theirs(v: &Value, root: &Path) -> Value {
    let root = root.to_string_lossy().into_owned();
    let all = v["services"].as_object().unwrap();
    let top_secrets = v["secrets"].as_object().cloned().unwrap_or_default();
    let mut services = Map::new();
    for (name, s) in all {
        let ulimits: Map<String, Value> = s
            .get("ulimits")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(n, u)| {
                let (soft, hard) = match u {
                    Value::Object(o) => (o["soft"].as_i64(), o["hard"].as_i64()),
                    n => (n.as_i64(), n.as_i64()),
                };
                (n.clone(), json!([soft, hard]))
            })
            .collect();
        let secrets: BTreeMap<String, String> = s
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|e| {
                let (source, target) = match e {
                    Value::Object(o) => {
                        (text(&o["source"]).unwrap(), o.get("target").and_then(text))
                    }
                    e => (text(e).unwrap(), None),
                };
                let file = text(&top_secrets[&source]["file"]).unwrap();
                let rel = file.strip_prefix(&root).unwrap().trim_start_matches('/');
                let target = target.unwrap_or_else(|| source.clone());
                let target = if target.starts_with('/') {
                    target
                } else {
                    format!("/run/secrets/{target}")
                };
                (target, rel.to_string())
            })
            .collect();
        let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
        services.insert(
            name.clone(),
            json!({
                "hostname": s.get("hostname").and_then(text),
                "domainname": s.get("domainname").and_then(text),
                "labels": pairs(s.get("labels")),
                "stop_signal": s.get("stop_signal").and_then(text),
                "stop_grace_period": s.get("stop_grace_period").and_then(text)
                    .map(|d| compose::project::parse_duration(&d).unwrap().as_secs_f64()),
                "init": s.get("init").and_then(Value::as_bool),
                "tty": flag("tty"), "stdin_open": flag("stdin_open"),
                "read_only": flag("read_only"),
                "ulimits": ulimits,
                "sysctls": pairs(s.get("sysctls")),
                "extra_hosts": strings(s.get("extra_hosts")),
                "dns": strings(s.get("dns")), "dns_search": strings(s.get("dns_search")),
                "cap_add": strings(s.get("cap_add")), "cap_drop": strings(s.get("cap_drop")),
                "group_add": strings(s.get("group_add")),
                "networks": names(all, name, s),
                "secrets": secrets,
            }),
        );
    }
    let networks: Map<String, Value> = v["networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(n, net)| {
            (
                n.clone(),
                json!(net
                    .get("internal")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)),
            )
        })
        .collect();
    json!({ "services": services, "networks": networks })
}

#[test]
fn the_keys_real_files_use_equal_docker_compose_config() {
    let _group = crate::support::group(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let (config, stdout) = docker_compose_config(dir.path(), "keys.yaml", FILE);
    let model = load_in(dir.path(), FILE, "keys.yaml");
    let (a, b) = (ours(&model), theirs(&config, dir.path()));
    assert_eq!(
        a, b,
        "benchctl (left) and docker-compose config (right) differ\n{stdout}"
    );
}

/// `extends` from the same file and from a file in another directory, against v1's merge.
const EXTENDING: &str = r#"
services:
  base:
    image: busybox
    command: ["a"]
    environment: ["A=1", "B=2"]
    labels: {x: "1"}
    volumes: ["data:/data", "logs:/logs"]
    ports: ["8080"]
    healthcheck: {test: ["CMD", "true"], interval: 5s}
  web:
    extends: base
    command: ["b"]
    environment: {B: "3", C: "4"}
    labels: ["y=2"]
    volumes: ["other:/data"]
    ports: ["9090"]
    healthcheck: {test: ["CMD", "false"]}
  api:
    extends: {file: common/services.yaml, service: app}
    environment: [Z=9]
volumes: {data: {}, logs: {}, other: {}}
"#;

const EXTENDED: &str = r#"
services:
  app:
    build: ./app
    environment: {Y: "8"}
    volumes: ["./conf/app.ini:/etc/app.ini"]
"#;

/// What `extends` decides, as canonical JSON: benchctl's model.
fn ours_extended(p: &Project) -> Value {
    let mut services = Map::new();
    for (name, s) in &p.services {
        // a list, not a map: two mounts at one target must show
        let mut mounts: Vec<(String, String)> = s
            .volumes
            .iter()
            .map(|m| (m.target.clone(), m.volume.clone().unwrap_or_default()))
            .collect();
        for c in &s.copies {
            if let Source::Branch(path) = &c.from {
                mounts.push((c.target.clone(), path.clone()));
            }
        }
        mounts.sort();
        let cmd = |c: &Option<compose::Cmd>| match c {
            Some(compose::Cmd::Exec(v)) => json!(v),
            Some(compose::Cmd::Shell(s)) => json!(s),
            None => Value::Null,
        };
        services.insert(
            name.clone(),
            json!({
                "environment": s.environment.iter()
                    .map(|(k, v)| (k.clone(), json!(v))).collect::<Map<_, _>>(),
                "command": cmd(&s.command),
                "labels": s.run.labels,
                "mounts": mounts,
                "ports": s.ports,
                "build": s.build.as_ref().map(|b| b.context.clone()),
                "test": cmd(&s.healthcheck.as_ref().and_then(|h| h.test.clone())),
            }),
        );
    }
    json!(services)
}

/// The same of `docker-compose config`'s output.
fn theirs_extended(v: &Value, root: &Path) -> Value {
    let root = format!("{}/", root.display());
    let rel = |p: &str| p.strip_prefix(&root).unwrap_or(p).to_string();
    let mut services = Map::new();
    for (name, s) in v["services"].as_object().unwrap() {
        let mut mounts: Vec<(String, String)> = strings(s.get("volumes"))
            .iter()
            .map(|m| {
                let parts: Vec<&str> = m.split(':').collect();
                (parts[1].to_string(), rel(parts[0]))
            })
            .collect();
        mounts.sort();
        let ports: Vec<u64> = s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| p["target"].as_u64().unwrap())
            .collect();
        let test = s.get("healthcheck").map(|h| h["test"].clone());
        services.insert(
            name.clone(),
            json!({
                "environment": pairs(s.get("environment")).into_iter()
                    .map(|(k, v)| (k, json!(text(&v)))).collect::<Map<_, _>>(),
                "command": s.get("command").cloned().unwrap_or(Value::Null),
                "labels": pairs(s.get("labels")),
                "mounts": mounts,
                "ports": ports,
                "build": s.get("build").map(|b| rel(&text(&b["context"]).unwrap())),
                "test": test.unwrap_or(Value::Null),
            }),
        );
    }
    json!(services)
}

#[test]
fn extends_equals_docker_compose_config() {
    let _group = crate::support::group(module_path!());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("common/app")).unwrap();
    std::fs::create_dir_all(dir.path().join("common/conf")).unwrap();
    std::fs::write(dir.path().join("common/services.yaml"), EXTENDED).unwrap();
    std::fs::write(dir.path().join("common/conf/app.ini"), "x=1\n").unwrap();
    let (config, stdout) = docker_compose_config(dir.path(), "compose.yaml", EXTENDING);
    let model = load_in(dir.path(), EXTENDING, "compose.yaml");
    let (a, b) = (ours_extended(&model), theirs_extended(&config, dir.path()));
    assert_eq!(
        a, b,
        "benchctl (left) and docker-compose config (right) differ\n{stdout}"
    );
}
