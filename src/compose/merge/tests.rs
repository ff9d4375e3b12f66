//! `include` and `extends` against files held in memory: merge rules, rebased paths, audits
//! of the other files, circles and bounds.

use super::super::{fate, load, Cmd, Inputs, Project};
use std::collections::BTreeMap;

fn load_files(dir: &str, main: &str, files: &[(&str, &str)]) -> Result<Project, String> {
    let files: BTreeMap<String, String> = files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    let read = move |p: &str| {
        files
            .get(p)
            .cloned()
            .ok_or_else(|| format!("there is no file `{p}` in the branch"))
    };
    let env = |_: &str| None;
    let allow: std::collections::BTreeSet<fate::Switch> = Default::default();
    let inputs = Inputs {
        env: &env,
        read: &read,
        dir,
        profiles: &[],
        allow: &allow,
        cap_add: &[],
        max_replicas: 3,
    };
    load(main, "compose.yaml", &inputs)
}

#[test]
fn extends_merges_by_the_specifications_rules() {
    let main = r#"
services:
  base:
    image: busybox
    command: ["a"]
    environment: ["A=1", "B=2"]
    volumes: ["data:/data", "logs:/logs"]
    ports: ["8080"]
    depends_on: [db]
    healthcheck: {test: ["CMD", "true"], interval: 5s}
  web:
    extends: base
    command: ["b"]
    environment: {B: "3", C: "4"}
    volumes: ["other:/data"]
    ports: ["9090"]
    healthcheck: {test: ["CMD", "false"]}
  db:
    image: busybox
volumes: {data: {}, logs: {}, other: {}}
"#;
    let p = load_files("", main, &[]).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.command, Some(Cmd::Exec(vec!["b".to_string()])));
    let env = |k: &str| web.environment.get(k).cloned().flatten();
    assert_eq!(env("A").as_deref(), Some("1"));
    assert_eq!(env("B").as_deref(), Some("3"));
    assert_eq!(env("C").as_deref(), Some("4"));
    let targets: Vec<(String, String)> = web
        .volumes
        .iter()
        .map(|m| (m.volume.clone().unwrap_or_default(), m.target.clone()))
        .collect();
    assert!(
        targets.contains(&("other".into(), "/data".into())),
        "{targets:?}"
    );
    assert!(
        targets.contains(&("logs".into(), "/logs".into())),
        "{targets:?}"
    );
    assert!(
        !targets.contains(&("data".into(), "/data".into())),
        "{targets:?}"
    );
    assert_eq!(web.ports, vec![8080, 9090]);
    assert!(web.depends_on.contains_key("db"));
    let hc = web.healthcheck.as_ref().expect("health check");
    assert!(format!("{hc:?}").contains("false"), "{hc:?}");
    assert_eq!(p.order, vec!["base", "web", "db"]);
}

#[test]
fn extends_from_another_file_rebases_its_paths_and_audits_the_service() {
    let common = "services:\n  app:\n    build: ./app\n    env_file: app.env\n";
    let main = "services:\n  web:\n    extends: {file: common/services.yaml, service: app}\n    ports: [\"80\"]\n";
    let files = [
        ("common/services.yaml", common),
        ("common/app.env", "FROM_FILE=yes\n"),
    ];
    let p = load_files("", main, &files).unwrap();
    let web = &p.services["web"];
    assert_eq!(
        web.build.as_ref().map(|b| b.context.as_str()),
        Some("common/app")
    );
    assert_eq!(
        web.environment.get("FROM_FILE"),
        Some(&Some("yes".to_string()))
    );

    let bad = "services:\n  app:\n    image: x\n    privileged: true\n";
    let err = load_files("", main, &[("common/services.yaml", bad)]).unwrap_err();
    assert!(err.contains("common/services.yaml"), "{err}");
    assert!(
        err.contains("line 4") && err.contains("services.app.privileged"),
        "{err}"
    );
}

#[test]
fn include_copies_resources_in_with_their_own_paths() {
    let main = "include:\n  - db/compose.yaml\nservices:\n  web:\n    image: busybox\n    ports: [\"80\"]\n    depends_on: [db]\n";
    let db = "services:\n  db:\n    image: busybox\n    volumes: [\"./init:/docker-entrypoint-initdb.d\", \"data:/var/lib/db\"]\n    secrets: [pw]\nsecrets:\n  pw: {file: pw.txt}\nvolumes: {data: {}}\n";
    let files = [
        ("db/compose.yaml", db),
        ("db/pw.txt", "s3cret"),
        ("db/init", ""),
    ];
    let p = load_files("", main, &files).unwrap();
    assert_eq!(p.order, vec!["web", "db"]);
    let db = &p.services["db"];
    let copies = format!("{:?}", db.copies);
    assert!(copies.contains("db/init"), "{copies}");
    assert!(
        copies.contains("db/pw.txt") || copies.contains("s3cret"),
        "{copies}"
    );
    assert!(p.volumes.contains(&"data".to_string()), "{:?}", p.volumes);
}

#[test]
fn include_refuses_a_conflict_a_circle_and_a_path_out_of_the_branch() {
    let main = "include: [other.yaml]\nservices:\n  web: {image: busybox, ports: [\"80\"]}\n";
    let other = "services:\n  web: {image: nginx}\n";
    let err = load_files("", main, &[("other.yaml", other)]).unwrap_err();
    assert!(
        err.contains("services.web") && err.contains("rename one"),
        "{err}"
    );

    let same = "services:\n  web: {image: busybox, ports: [\"80\"]}\n";
    load_files("", main, &[("other.yaml", same)]).unwrap();

    let a = "include: [b.yaml]\nservices: {}\n";
    let b = "include: [a.yaml]\nservices: {}\n";
    let main = "include: [a.yaml]\nservices:\n  web: {image: busybox, ports: [\"80\"]}\n";
    let err = load_files("", main, &[("a.yaml", a), ("b.yaml", b)]).unwrap_err();
    assert!(err.contains("circle"), "{err}");

    let main = "include: [../x.yaml]\nservices:\n  web: {image: busybox, ports: [\"80\"]}\n";
    let err = load_files("", main, &[]).unwrap_err();
    assert!(err.contains("outside the branch"), "{err}");
}

#[test]
fn extends_refuses_a_circle_and_a_missing_service() {
    let main = "services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n";
    let err = load_files("", main, &[]).unwrap_err();
    assert!(err.contains("circle"), "{err}");
    let main = "services:\n  a: {extends: nope, image: x}\n";
    let err = load_files("", main, &[]).unwrap_err();
    assert!(err.contains("no service `nope`"), "{err}");
}

#[test]
fn include_in_a_subdirectory_and_a_file_from_a_parent() {
    // the main file in deploy/, including ../shared/db.yaml whose build is its own directory
    let main =
        "include: [../shared/db.yaml]\nservices:\n  web: {image: busybox, ports: [\"80\"]}\n";
    let db = "services:\n  db: {build: .}\n";
    let p = load_files("deploy", main, &[("shared/db.yaml", db)]).unwrap();
    let ctx = p.services["db"].build.as_ref().map(|b| b.context.clone());
    assert_eq!(ctx.as_deref(), Some("shared"));
}

#[test]
fn relative_paths_between_directories() {
    assert_eq!(super::relative("", "a/b"), "./a/b");
    assert_eq!(super::relative("a", "a/b"), "./b");
    assert_eq!(super::relative("a/c", "a/b"), "../b");
    assert_eq!(super::relative("a", "a"), ".");
    assert_eq!(super::relative("x", "."), "..");
}
