//! The Compose subset against Compose itself: for a set of files, benchctl's interpolated,
//! normalised model equals what Debian's `docker-compose` (v1) makes of them (`docker-compose
//! config`), both projected onto the same canonical JSON. `docker-compose` is installed by
//! `.ci/run`; without it this test fails.

use benchctl::compose::{self, Cmd, Inputs, Project};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The bench's environment both sides interpolate from.
pub(crate) const ENV: &[(&str, &str)] = &[
    ("COUNT", "3"),
    ("TAG", "stable"),
    ("GREETING", "hello there"),
    ("EMPTY", ""),
    ("PORT", "8081"),
];

const FILES: &[(&str, &str)] = &[
    (
        "three.yaml",
        r#"
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    build:
      context: ./app
      dockerfile: web.Dockerfile
      args:
        GREETING: "${GREETING:-hi}"
        PLAIN: "yes"
      target: web
    command: ["/bin/busybox", "httpd", "-f", "-p", "${PORT}"]
    environment:
      - DB_HOST=db
      - EMPTY_DEFAULT=${EMPTY:-fallback}
      - EMPTY_DASH=${EMPTY-fallback}
      - PRICE=5$$
    ports:
      - "8080"
      - "127.0.0.1:9000:9090/tcp"
      - target: 7070
        published: 7071
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
    volumes:
      - data:/data:ro
      - type: volume
        source: cache
        target: /cache
    tmpfs: /run
    working_dir: /www
    user: "1000"
    deploy:
      resources:
        limits:
          cpus: "0.5"
          memory: 64m
  db:
    image: "busybox:${TAG}"
    entrypoint: /bin/busybox sh -c
    command: "echo $$HOME ${COUNT}"
    expose: ["5432"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "true"]
      interval: 1m30s
      timeout: 5s
      retries: 3
    env_file: db.env
    environment:
      COUNT: ${COUNT:?need a count}
      FROM_BENCH:
  migrate:
    image: busybox
    depends_on: [db]
    profiles: ["tools"]
volumes:
  data:
  cache: {}
"#,
    ),
    (
        "short.yml",
        r#"
version: "3.8"
services:
  app:
    build: .
    ports: ["${PORT:-80}"]
    environment:
      A: 1
      B: "true"
      C: ${UNSET_VAR}
    command: ./run --flag=$${NOT_INTERPOLATED}
    healthcheck:
      test: "wget -q -O- http://localhost/ || exit 1"
      start_period: 500ms
"#,
    ),
];

/// Strings as Compose keeps them in `config` (an escaped `$$` stays escaped): unescaped.
fn unescape(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("$$", "$")),
        Value::Array(a) => Value::Array(a.iter().map(unescape).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), unescape(v))).collect())
        }
        other => other.clone(),
    }
}

pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn cmd_json(c: &Option<Cmd>) -> Value {
    match c {
        None => Value::Null,
        Some(Cmd::Shell(s)) => json!(s),
        Some(Cmd::Exec(v)) => json!(v),
    }
}

fn secs(d: Option<std::time::Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// benchctl's model as the canonical JSON.
fn ours(p: &Project) -> Value {
    let mut services = Map::new();
    for (name, s) in &p.services {
        let h = s.healthcheck.as_ref();
        services.insert(
            name.clone(),
            json!({
                "image": s.image,
                "build": s.build.as_ref().map(|b| json!({
                    "context": b.context, "dockerfile": b.dockerfile, "args": b.args,
                    "target": b.target,
                })),
                "command": cmd_json(&s.command),
                "entrypoint": cmd_json(&s.entrypoint),
                "environment": s.environment,
                "expose": s.expose,
                "ports": s.ports,
                "depends_on": s.depends_on.iter()
                    .map(|(k, c)| (k.clone(), json!(c.as_str()))).collect::<Map<_, _>>(),
                "healthcheck": h.map(|h| json!({
                    "test": cmd_json(&h.test), "interval": secs(h.interval),
                    "timeout": secs(h.timeout), "retries": h.retries,
                    "start_period": secs(h.start_period),
                })),
                "volumes": s.volumes.iter()
                    .map(|m| json!([m.volume, m.target, m.read_only])).collect::<Vec<_>>(),
                "tmpfs": s.tmpfs,
                "working_dir": s.working_dir,
                "user": s.user,
                "restart": s.restart,
                "cpus": s.limits.cpus,
                "memory": s.limits.memory,
                "profiles": s.profiles,
            }),
        );
    }
    json!({ "services": services, "volumes": p.volumes })
}

/// `docker-compose config`'s output as the canonical JSON (`root` is the project directory).
fn theirs(v: &Value, root: &Path) -> Value {
    let v = unescape(v);
    let root = root.to_string_lossy().into_owned();
    let dur = |d: &Value| {
        text(d).map_or(Value::Null, |d| {
            json!(compose::project::parse_duration(&d).unwrap().as_secs_f64())
        })
    };
    let mut services = Map::new();
    for (name, s) in v["services"].as_object().unwrap() {
        let build = s.get("build").map(|b| {
            let ctx = b["context"].as_str().unwrap();
            let rel = ctx.strip_prefix(&root).unwrap().trim_start_matches('/');
            json!({
                "context": if rel.is_empty() { "." } else { rel },
                "dockerfile": b.get("dockerfile").and_then(text).unwrap_or("Dockerfile".into()),
                "args": b.get("args").cloned().unwrap_or(json!({})),
                "target": b.get("target").cloned().unwrap_or(Value::Null),
            })
        });
        let ports: Vec<u16> = s
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| match p {
                Value::String(t) => t
                    .split('/')
                    .next()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap(),
                p => p["target"].as_u64().unwrap() as u16,
            })
            .collect();
        let volumes: Vec<Value> = s
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| match m {
                Value::String(t) => {
                    let parts: Vec<&str> = t.split(':').collect();
                    match parts.as_slice() {
                        [t] => json!([null, t, false]),
                        [s, t] => json!([s, t, false]),
                        [s, t, mode] => json!([s, t, mode.split(',').any(|o| o == "ro")]),
                        _ => panic!("{t}"),
                    }
                }
                m => json!([
                    m["source"],
                    m["target"],
                    m.get("read_only").and_then(Value::as_bool).unwrap_or(false)
                ]),
            })
            .collect();
        let env: BTreeMap<String, Option<String>> = s
            .get("environment")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let limits = &s["deploy"]["resources"]["limits"];
        let h = s.get("healthcheck");
        let list = |k: &str| s.get(k).cloned().unwrap_or(json!([]));
        let opt = |k: &str| s.get(k).and_then(text).map_or(Value::Null, Value::String);
        services.insert(
            name.clone(),
            json!({
                "image": opt("image"),
                "build": build,
                "command": s.get("command").cloned().unwrap_or(Value::Null),
                "entrypoint": s.get("entrypoint").cloned().unwrap_or(Value::Null),
                "environment": env,
                "expose": s.get("expose").and_then(Value::as_array).map(|a| a.iter().map(|e| json!(text(e))).collect::<Vec<_>>()).unwrap_or_default(),
                "ports": ports,
                "depends_on": s.get("depends_on").map(|d| d.as_object().unwrap().iter()
                    .map(|(k, c)| (k.clone(), c["condition"].clone())).collect::<Map<_, _>>())
                    .unwrap_or_default(),
                "healthcheck": h.map(|h| json!({
                    "test": h.get("test").cloned().unwrap_or(Value::Null),
                    "interval": h.get("interval").map_or(Value::Null, dur),
                    "timeout": h.get("timeout").map_or(Value::Null, dur),
                    "retries": h.get("retries").cloned().unwrap_or(Value::Null),
                    "start_period": h.get("start_period").map_or(Value::Null, dur),
                })),
                "volumes": volumes,
                "tmpfs": list("tmpfs"),
                "working_dir": opt("working_dir"),
                "user": opt("user"),
                "restart": opt("restart"),
                "cpus": limits.get("cpus").and_then(text).map(|c| c.parse::<f64>().unwrap()),
                "memory": limits.get("memory").and_then(text).map(|m| benchctl::settings::parse_memory(&m).unwrap()),
                "profiles": list("profiles"),
            }),
        );
    }
    let volumes: Vec<&String> = v["volumes"]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    json!({ "services": services, "volumes": volumes })
}

/// `docker-compose config` of the file `name` (written with `text` into `dir`), interpolated
/// from [`ENV`]: the parsed output and its text.
pub(crate) fn docker_compose_config(dir: &Path, name: &str, text: &str) -> (Value, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new("docker-compose")
        .arg("-f")
        .arg(&path)
        .arg("config")
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .envs(ENV.iter().copied())
        .output()
        .expect("docker-compose runs (.ci/run installs Debian's docker-compose)");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    (serde_saphyr::from_str(&stdout).unwrap(), stdout)
}

#[test]
fn the_model_equals_docker_compose_config() {
    let _group = crate::support::group(module_path!());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("db.env"), "# db\nX=1\nCOUNT=from-file\n").unwrap();
    let env: BTreeMap<&str, &str> = ENV.iter().copied().collect();
    let lookup = |n: &str| env.get(n).map(|v| v.to_string());
    let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).map_err(|e| e.to_string());
    for (name, text) in FILES {
        let (config, stdout) = docker_compose_config(dir.path(), name, text);
        let allow = Default::default();
        let inputs = Inputs {
            env: &lookup,
            read: &read,
            dir: "",
            profiles: &["tools".to_string()],
            allow: &allow,
            cap_add: &[],
            max_replicas: 3,
        };
        let model = compose::load(text, name, &inputs).unwrap();
        let (a, b) = (ours(&model), theirs(&config, dir.path()));
        assert_eq!(
            a, b,
            "{name}: benchctl (left) and docker-compose config (right) differ\n{stdout}"
        );
    }
}
