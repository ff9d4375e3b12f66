//! benchctl builds a Dockerfile up to its trailing configuration instructions and commits those
//! (with its labels) in one step, or has BuildKit write them: either way the image
//! configuration must equal `docker build`'s.

use crate::support::*;
use benchctl::build;
use benchctl::engine::docker::DockerEngine;
use benchctl::engine::{BuildSpec, Builder};
use benchctl::output::{SharedReporter, Silent};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const DOCKERFILE: &str = "FROM scratch
ENV PATH=/bin BASE=one
COPY busybox /bin/busybox
ENTRYPOINT [\"/bin/busybox\"]
LABEL early=1
COPY www /www
ENV PATH=$PATH:/opt/bin EXTRA=\"two words\"
EXPOSE 8080 9090/tcp
USER 1000:1000
LABEL late=\"x y\" \\
      multi=line
CMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]
";

fn config(image: &str) -> Value {
    let out = docker_lines(&["inspect", "--format", "{{json .Config}}", image]);
    let mut v: Value = serde_json::from_str(&out[0]).unwrap();
    let c = v.as_object_mut().unwrap();
    // what differs by nature: the build's ids, and benchctl's own labels
    for k in ["Image", "Hostname"] {
        c.remove(k);
    }
    if let Some(Value::Object(labels)) = c.get_mut("Labels") {
        labels.retain(|k, _| !k.starts_with("benchctl."));
    }
    // what BuildKit writes where the classic builder leaves nothing, meaning the same: the
    // working directory `/` (empty is `/`), and ArgsEscaped (Windows images only)
    if c.get("WorkingDir") == Some(&Value::String("/".into())) {
        c.remove("WorkingDir");
    }
    if c.get("ArgsEscaped") == Some(&Value::Bool(true)) {
        c.remove("ArgsEscaped");
    }
    v
}

#[test]
fn committed_configuration_equals_docker_build() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["BLD-1"]);
    let repo = AppRepo::new();
    repo.write("Dockerfile", DOCKERFILE);
    let dir = repo.path();

    let tag = "benchctl-test/bld-1:docker";
    docker_build(dir, tag, &["--label", "benchctl.issue=BLD-1"]);

    for (ours, builder) in [
        ("benchctl/bld-1:test", Builder::Classic),
        ("benchctl/bld-1:buildkit", Builder::BuildKit),
    ] {
        same_configuration(dir, tag, ours, builder);
    }
}

/// Builds `dir` as `ours` with `builder`: its configuration equals `docker build`'s (`tag`),
/// it carries benchctl's labels, and it serves.
fn same_configuration(dir: &std::path::Path, tag: &str, ours: &str, builder: Builder) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = DockerEngine::connect().await.unwrap();
        let reporter: SharedReporter = Arc::new(Silent);
        let spec = BuildSpec {
            dockerfile: "Dockerfile".into(),
            tag: ours.into(),
            labels: HashMap::from([
                ("benchctl.issue".to_string(), "BLD-1".to_string()),
                ("benchctl.managed".to_string(), "true".to_string()),
            ]),
            builder,
            ..Default::default()
        };
        build::build(&engine, dir, &spec, "BLD-1", "b", &reporter)
            .await
            .unwrap();
    });
    assert_eq!(config(ours), config(tag), "{builder:?}");
    let labels = docker_lines(&["inspect", "--format", "{{json .Config.Labels}}", ours]);
    let labels: Value = serde_json::from_str(&labels[0]).unwrap();
    assert_eq!(labels["benchctl.issue"], "BLD-1");
    assert_eq!(labels["late"], "x y");
    // and it runs: the committed command serves the page
    let id = docker_lines(&["run", "-d", "-P", "--label", "benchctl.issue=BLD-1", ours]).remove(0);
    let port = docker_lines(&["port", &id, "8080/tcp"])[0]
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(body) = http_get(&format!("http://127.0.0.1:{port}/")) {
            assert_eq!(body, "main\n");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the committed image does not serve"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
