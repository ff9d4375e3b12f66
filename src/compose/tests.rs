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

fn load_with(text: &str, allow: &[fate::Switch]) -> Result<Project, String> {
    let allow = allow.iter().copied().collect();
    let inputs = Inputs {
        env: &env,
        read: &read,
        dir: "",
        profiles: &[],
        allow: &allow,
        cap_add: &[],
        max_replicas: 3,
    };
    load(text, "compose.yaml", &inputs)
}

fn load_text(text: &str) -> Result<Project, String> {
    load_with(text, &[])
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
    assert_eq!(web_service(&p, None).unwrap().0, "web");
}

#[test]
fn refusals_name_the_line_or_the_service_and_key() {
    for (text, parts) in [
        ("services:\n  web:\n    image: x\n    privileged: true\n", vec!["line 4", "`services.web.privileged`", "compose-allow = \"privileged\""]),
        ("services:\n  web:\n    image: x\nnetwork:\n  n: {}\n", vec!["line 4", "`network`", "did you mean `networks`"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"/etc:/host-etc\"]\n", vec!["service `web`", "`volumes`", "host's files", "host-paths"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\n", vec!["Docker socket"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"../../etc:/e\"]\n", vec!["host-paths"]),
        ("services:\n  web:\n    image: x\n    volumes: [{type: bind, source: /, target: /h}]\n", vec!["host-paths"]),
        ("services:\n  web:\n    image: \"${MISSING:?set MISSING}\"\n", vec!["service `web`, `image`", "MISSING is required: set MISSING"]),
        ("services:\n  web:\n    build: ../other\n", vec!["not a directory of the branch"]),
        ("services:\n  web:\n    image: x\n    env_file: ../../etc/passwd\n", vec!["outside the branch"]),
        ("services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD, x]\n      color: red\n", vec!["line 6", "color"]),
        ("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_ready}}\n  db:\n    image: y\n", vec!["service_ready"]),
        ("services:\n  web:\n    image: x\n    volumes: [\"data:/d\"]\n", vec!["`data` is not declared"]),
        ("services:\n  web:\n    command: x\n", vec!["neither `build` nor `image`"]),
        ("services:\n  web:\n    image: x\n    network_mode: host\n", vec!["host-namespaces"]),
        ("services:\n  web:\n    image: x\n    cap_add: [NET_ADMIN]\n", vec!["`NET_ADMIN`", "compose-allow = \"cap-add\""]),
        ("services:\n  web:\n    image: x\n    sysctls: {kernel.panic: 1}\n", vec!["not namespaced"]),
        ("services:\n  web:\n    image: x\n    networks: [front]\n", vec!["`front` is not declared"]),
        ("services:\n  web:\n    image: x\n    secrets: [pw]\n", vec!["`pw` is not declared"]),
        ("services:\n  web:\n    image: x\nnetworks:\n  n: {external: true}\n", vec!["networks.n.external", "external"]),
        ("services:\n  web:\n    image: x\n    runtime: io.containerd.wasmedge.v1\n", vec!["compose-allow = \"runtime\""]),
        ("services:\n  web:\n    image: x\n    deploy: {replicas: 4}\n", vec!["more than the 3", "max-replicas"]),
        ("services:\n  a: {image: x, scale: 3}\n  b: {image: x, scale: 3}\n  c: {image: x, scale: 3}\n  d: {image: x, scale: 3}\n  e: {image: x}\n", vec!["13 containers", "12"]),
    ] {
        let e = load_text(text).unwrap_err();
        for part in parts {
            assert!(e.contains(part), "{text}: `{part}` not in: {e}");
        }
        assert!(e.starts_with("compose.yaml"), "{e}");
    }
}

#[test]
fn the_operator_lets_through_what_it_allows() {
    use fate::Switch;
    let text =
        "services:\n  web:\n    image: x\n    privileged: true\n    cap_add: [NET_ADMIN]\n    \
                volumes: [\"/srv/data:/data:ro\"]\n";
    assert!(load_text(text).is_err());
    let p = load_with(
        text,
        &[Switch::Privileged, Switch::CapAdd, Switch::HostPaths],
    )
    .unwrap();
    let run = &p.services["web"].run;
    assert!(run.container.privileged);
    assert_eq!(run.cap_add, ["NET_ADMIN"]);
    assert_eq!(run.container.binds, ["/srv/data:/data:ro"]);
    // a capability a bench has anyway needs nothing
    let p = load_text("services:\n  web:\n    image: x\n    cap_add: [CHOWN]\n").unwrap();
    assert_eq!(p.services["web"].run.cap_add, ["CHOWN"]);
}

#[test]
fn keys_real_files_use_are_run_or_mapped() {
    let text = r#"
services:
  web:
    build: {context: app, target: builder}
    container_name: the-web
    hostname: web1
    labels: ["team=blue", "traefik.http.routers.x.rule=Host(`evil`)"]
    stop_signal: SIGINT
    stop_grace_period: 1h
    init: true
    tty: true
    stdin_open: true
    ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
    sysctls: ["net.core.somaxconn=1024"]
    extra_hosts: ["db.local=10.0.0.1"]
    logging: {driver: json-file}
    platform: linux/amd64
    ports: ["80:80", "5000:5000/udp"]
    volumes: ["./nginx/default.conf:/etc/nginx/conf.d/default.conf:ro", ".:/code", "/cache"]
    secrets: [db-password, {source: api-key, target: key, mode: 0400}]
    configs: [site]
    networks:
      front: {aliases: [www]}
      back:
    links: ["db:database"]
  db:
    image: postgres
    networks: [back]
networks:
  front:
  back: {internal: true}
secrets:
  db-password: {file: db/password.txt}
  api-key: {environment: COUNT}
configs:
  site: {content: "hello ${TAG}"}
"#;
    let p = load_text(text).unwrap();
    let web = &p.services["web"];
    let r = &web.run;
    assert_eq!(r.container.hostname.as_deref(), Some("web1"));
    assert_eq!(r.labels["team"], "blue");
    assert_eq!(r.container.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(r.container.stop_timeout, Some(runtime::MAX_STOP_GRACE));
    assert_eq!(
        (r.container.init, r.container.tty, r.container.open_stdin),
        (Some(true), true, true)
    );
    assert_eq!(
        r.container.ulimits,
        [("nofile".into(), 1024, 2048), ("nproc".into(), 512, 512)]
    );
    assert_eq!(r.container.extra_hosts, ["db.local:10.0.0.1"]);
    assert_eq!(web.ports, [80]);
    assert_eq!(web.volumes.len(), 1);
    let targets: Vec<(&str, &Source)> = web
        .copies
        .iter()
        .map(|c| (c.target.as_str(), &c.from))
        .collect();
    assert_eq!(
        targets,
        [
            (
                "/etc/nginx/conf.d/default.conf",
                &Source::Branch("nginx/default.conf".into())
            ),
            ("/code", &Source::Branch(".".into())),
            (
                "/run/secrets/db-password",
                &Source::Branch("db/password.txt".into())
            ),
            ("/run/secrets/key", &Source::Text("3".into())),
            ("/site", &Source::Text("hello stable".into())),
        ]
    );
    assert_eq!(web.copies[3].mode, Some(0o400));
    assert_eq!(web.networks["front"], ["www", "the-web", "web1"]);
    assert_eq!(web.networks["back"], ["the-web", "web1"]);
    assert_eq!(p.services["db"].networks["back"], ["database"]);
    assert!(p.networks["back"].internal);
    assert!(!p.networks.contains_key("default"));
    assert_eq!(r.labels.len(), 1);
    assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
    assert!(p.notes[0].contains("services.web.logging"));
    assert!(p.notes[1].contains("`traefik.http.routers.x.rule` left off"));
}

#[test]
fn the_bench_is_the_front_service_or_the_named_one() {
    let two = "services:\n  a: {image: x, ports: ['9000']}\n  b: {image: y, ports: ['8080']}\n";
    let p = load_text(two).unwrap();
    let (web, why) = web_service(&p, None).unwrap();
    assert_eq!(web, "b");
    assert!(why.unwrap().contains("a, b"));
    // a proxy in front of an app that publishes too
    let front = "services:\n  app: {image: x, ports: ['80']}\n  proxy: {image: y, ports: ['8443'], depends_on: [app]}\n";
    assert_eq!(
        web_service(&load_text(front).unwrap(), None).unwrap(),
        ("proxy".into(), None)
    );
    assert_eq!(web_service(&p, Some("a")).unwrap().0, "a");
    assert!(web_service(&p, Some("c")).unwrap_err().contains("`c`"));
    let named = format!("{two}x-benchctl:\n  web: a\n");
    assert_eq!(
        web_service(&load_text(&named).unwrap(), None).unwrap().0,
        "a"
    );
    // no likelier port: the first in the file (not in name order)
    let order = "services:\n  z: {image: x, ports: ['9000']}\n  a: {image: y, ports: ['9001']}\n";
    assert_eq!(
        web_service(&load_text(order).unwrap(), None).unwrap().0,
        "z"
    );
    let none = load_text("services:\n  a: {image: x}\n").unwrap();
    assert!(web_service(&none, None)
        .unwrap_err()
        .contains("no service publishes"));
}

#[test]
fn many_aliases_are_read_and_a_budget_is_said_plainly() {
    let mut text = String::from("x-a: &a {restart: always}\nservices:\n");
    for i in 0..12 {
        text.push_str(&format!(
            "  s{i}:\n    <<: *a\n    image: x\n    environment: &e{i} {{A: '1'}}\n"
        ));
    }
    text.push_str("x-more:\n");
    for i in 0..150 {
        text.push_str(&format!("  - *e{}\n", i % 12));
    }
    assert!(load_text(&text).is_ok(), "{:?}", load_text(&text).err());
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..3000 {
        bomb.push_str(&format!("b{i}: *a\n"));
    }
    let e = load_text(&bomb).unwrap_err();
    assert!(
        e.contains("aliases") && e.contains("past what benchctl reads"),
        "{e}"
    );
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
