//! The Compose subset on its own: forms, interpolation, refusals with lines.

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "COUNT" => Some("3".into()),
        "TAG" => Some("stable".into()),
        _ => None,
    }
}

fn read(path: &str) -> Result<String, String> {
    match path {
        "db.env" => Ok("# comment\nX=1\nCOUNT=from-file\n".into()),
        _ => Err(format!("no file `{path}`")),
    }
}

fn load_text(text: &str) -> Result<Project, String> {
    let inputs = Inputs {
        env: &env,
        read: &read,
        dir: "",
        profiles: &[],
    };
    load(text, "compose.yaml", &inputs)
}

const THREE: &str = r#"
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    build:
      context: ./app
      args: ["GREETING=hi", "FROM_ENV"]
    command: ["/bin/busybox", "httpd", "-f", "-p", "8080"]
    environment:
      - DB_HOST=db
    ports: ["8080", "127.0.0.1:9000:9090/tcp", {target: 7070, published: 1}]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
    volumes: ["data:/data:ro", "/scratch"]
    deploy: {resources: {limits: {cpus: "0.5", memory: 64m}}}
  db:
    image: "busybox:${TAG}"
    entrypoint: /bin/busybox sh -c
    command: "echo $$HOME"
    env_file: db.env
    environment:
      COUNT: ${COUNT:?need a count}
      UNSET:
    healthcheck: {test: ["CMD", "/bin/busybox", "true"], interval: 1m30s, retries: 3}
  migrate:
    image: busybox
    depends_on: [db]
  tools:
    image: busybox
    profiles: [debug]
volumes:
  data:
"#;

#[test]
fn every_form_is_normalised() {
    let p = load_text(THREE).unwrap();
    assert_eq!(
        p.services.keys().collect::<Vec<_>>(),
        ["db", "migrate", "web"]
    );
    let web = &p.services["web"];
    let b = web.build.as_ref().unwrap();
    assert_eq!(
        (b.context.as_str(), b.dockerfile.as_str()),
        ("app", "Dockerfile")
    );
    assert_eq!(b.args.get("GREETING").map(String::as_str), Some("hi"));
    assert!(
        !b.args.contains_key("FROM_ENV"),
        "an unset bare arg is left out"
    );
    assert_eq!(web.ports, vec![8080, 9090, 7070]);
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.depends_on["db"], Condition::Healthy);
    assert_eq!(web.depends_on["migrate"], Condition::CompletedSuccessfully);
    assert_eq!(
        web.volumes,
        vec![
            Mount {
                volume: Some("data".into()),
                target: "/data".into(),
                read_only: true
            },
            Mount {
                volume: None,
                target: "/scratch".into(),
                read_only: false
            },
        ]
    );
    assert_eq!(web.limits.cpus, Some(0.5));
    assert_eq!(web.limits.memory, Some(64 << 20));
    let db = &p.services["db"];
    assert_eq!(db.image.as_deref(), Some("busybox:stable"));
    assert_eq!(db.command, Some(Cmd::Shell("echo $HOME".into())));
    assert_eq!(db.environment["COUNT"].as_deref(), Some("3"));
    assert_eq!(db.environment["X"].as_deref(), Some("1"));
    assert_eq!(db.environment["UNSET"], None);
    let h = db.healthcheck.as_ref().unwrap();
    assert_eq!(h.interval, Some(std::time::Duration::from_secs(90)));
    assert_eq!(p.services["migrate"].depends_on["db"], Condition::Started);
    assert_eq!(p.volumes, vec!["data".to_string()]);
    assert_eq!(web_service(&p, None).unwrap(), "web");
}

#[test]
fn refusals_name_the_line_or_the_service_and_key() {
    for (text, parts) in [
        ("services:\n  web:\n    image: x\n    privileged: true\n", vec!["line 4", "`privileged`", "service `web`"]),
        ("services:\n  web:\n    image: x\nnetworks:\n  n: {}\n", vec!["line 4", "`networks`", "top level"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"/etc:/host-etc\"]\n", vec!["service `web`", "`volumes`", "path of the host"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"./src:/src\"]\n", vec!["path of the host"]),
        ("services:\n  web:\n    image: x\n    volumes: [{type: bind, source: /, target: /h}]\n", vec!["path of the host"]),
        ("services:\n  web:\n    image: \"${MISSING:?set MISSING}\"\n", vec!["service `web`, `image`", "MISSING is required: set MISSING"]),
        ("services:\n  web:\n    build: ../other\n", vec!["not a directory of the branch"]),
        ("services:\n  web:\n    image: x\n    env_file: ../../etc/passwd\n", vec!["outside the branch"]),
        ("services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n      color: red\n", vec!["line 6", "color"]),
        ("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_ready}}\n  db:\n    image: y\n", vec!["service_ready"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"data:/d\"]\n", vec!["`data` is not declared"]),
        ("services:\n  web:\n    command: x\n", vec!["neither `build` nor `image`"]),
    ] {
        let e = load_text(text).unwrap_err();
        for part in parts {
            assert!(e.contains(part), "{text}: `{part}` not in: {e}");
        }
        assert!(e.starts_with("compose.yaml"), "{e}");
    }
}

#[test]
fn the_bench_is_named_or_the_only_one_publishing() {
    let two = "services:\n  a: {image: x, ports: ['80']}\n  b: {image: y, ports: ['81']}\n";
    let p = load_text(two).unwrap();
    let e = web_service(&p, None).unwrap_err();
    assert!(e.contains("a, b") && e.contains("x-benchctl"), "{e}");
    assert_eq!(web_service(&p, Some("b")).unwrap(), "b");
    assert!(web_service(&p, Some("c")).unwrap_err().contains("`c`"));
    let named = format!("{two}x-benchctl:\n  web: a\n");
    assert_eq!(web_service(&load_text(&named).unwrap(), None).unwrap(), "a");
    let none = load_text("services:\n  a: {image: x}\n").unwrap();
    assert!(web_service(&none, None)
        .unwrap_err()
        .contains("no service publishes"));
}

#[test]
fn files_are_found_in_the_specifications_order() {
    assert_eq!(
        find(&|n| n == "docker-compose.yml" || n == "compose.yml"),
        Some("compose.yml")
    );
    assert_eq!(find(&|_| false), None);
}

#[test]
fn durations_as_compose_writes_them() {
    use project::parse_duration as d;
    use std::time::Duration;
    assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
    assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
    assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
    for bad in ["", "5", "1y", "18446744073709551615h", "-1s"] {
        assert_eq!(d(bad), None, "{bad}");
    }
}
