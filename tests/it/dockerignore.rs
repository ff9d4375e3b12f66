//! `.dockerignore` differential test: the context benchctl streams must hold exactly the files
//! that `docker build` (the docker CLI with the classic builder) sends for the same directory.

use crate::support::*;
use benchctl::build;
use benchctl::engine::docker::DockerEngine;
use benchctl::engine::{BuildSpec, Builder};
use benchctl::output::{SharedReporter, Silent};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const IGNORE: &str = "\
# comments and blank lines are skipped

*.log
!important.log
**/*.tmp
!**/keep.tmp
build/
!build/keep/**
docs
!docs/README.md
/abs.txt
node_modules
**/secret*
sub/*/deep.txt
a?c.txt
[xy].dat
*.md
!docs/README.md
Dockerfile
  spaced.txt  
dir1/**/x
**/trail/
.git
";

const FILES: &[&str] = &[
    "a.log",
    "important.log",
    "x/b.log",
    "x/y/c.tmp",
    "d.tmp",
    "keep.tmp",
    "x/keep.tmp",
    "build/out.bin",
    "build/keep/k.txt",
    "build/keep/sub/k2.txt",
    "docs/README.md",
    "docs/other.md",
    "abs.txt",
    "sub/abs.txt",
    "node_modules/m/index.js",
    "secret.txt",
    "x/secret.key",
    "sub/a/deep.txt",
    "sub/a/b/deep.txt",
    "sub/deep.txt",
    "abc.txt",
    "a/c.txt",
    "x.dat",
    "z.dat",
    "README.md",
    "space name.txt",
    "uni-\u{fc}.txt",
    "spaced.txt",
    "dir1/x",
    "dir1/a/b/x",
    "dir1/y",
    "p/trail/f",
    "trail/g",
    "kept/plain.txt",
];

fn make_context(dir: &Path) {
    for f in FILES {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f.as_bytes()).unwrap();
    }
    std::fs::write(dir.join(".dockerignore"), IGNORE).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /ctx/\n").unwrap();
}

/// Regular files under /ctx of an image, via `docker create` + `docker export`.
fn image_files(image: &str) -> BTreeSet<String> {
    let id = docker_lines(&["create", image, "/none"]).pop().unwrap();
    let out = Command::new("docker")
        .args(["export", &id])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    assert!(out.status.success());
    let mut ar = tar::Archive::new(out.stdout.as_slice());
    ar.entries()
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            (e.header().entry_type().is_file())
                .then(|| p.strip_prefix("ctx/").map(str::to_string))
                .flatten()
        })
        .collect()
}

#[test]
fn context_matches_docker_build() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["IGN-1"]);
    let dir = tempfile::tempdir().unwrap();
    make_context(dir.path());

    // What docker build sends (classic builder, as benchctl uses).
    let tag = "benchctl-test/ign-1:docker";
    docker_build(dir.path(), tag, &["--label", "benchctl.issue=IGN-1"]);
    let docker_set = image_files(tag);

    // What benchctl's walker sends. Like the CLI, it sends the Dockerfile even though the
    // .dockerignore excludes it; the engine then drops it from the context after reading it
    // (moby's removeDockerfile), so it is absent from both images.
    let mut ours: BTreeSet<String> = build::context_files(dir.path(), "Dockerfile")
        .unwrap()
        .into_iter()
        .collect();
    assert!(ours.remove("Dockerfile"), "the Dockerfile must be sent");
    assert_eq!(ours, docker_set, "walker differs from docker build");

    // ... and what the engine receives from benchctl's streamed build, with either builder
    for (our_tag, builder) in [
        ("benchctl-test/ign-1:benchctl", Builder::Classic),
        ("benchctl-test/ign-1:buildkit", Builder::BuildKit),
    ] {
        streamed_as_docker_sends(dir.path(), our_tag, builder, &docker_set);
    }

    // sanity: the rules did exclude and re-include things
    for f in [
        "important.log",
        "x/keep.tmp",
        "build/keep/sub/k2.txt",
        "docs/README.md",
        ".dockerignore",
        "a/c.txt",
    ] {
        assert!(docker_set.contains(f), "{f} should be sent");
    }
    for f in [
        "a.log",
        "d.tmp",
        "build/out.bin",
        "docs/other.md",
        "abs.txt",
        "x/secret.key",
        "abc.txt",
        "README.md",
        "spaced.txt",
        "dir1/a/b/x",
    ] {
        assert!(!docker_set.contains(f), "{f} should be excluded");
    }
}

/// Builds `dir` as `our_tag` with `builder`: the image holds what `docker build` sent.
fn streamed_as_docker_sends(
    dir: &Path,
    our_tag: &str,
    builder: Builder,
    docker_set: &BTreeSet<String>,
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = DockerEngine::connect().await.unwrap();
        let reporter: SharedReporter = Arc::new(Silent);
        let spec = BuildSpec {
            dockerfile: "Dockerfile".into(),
            tag: our_tag.into(),
            labels: HashMap::from([("benchctl.issue".to_string(), "IGN-1".to_string())]),
            builder,
            ..Default::default()
        };
        build::build(&engine, dir, &spec, "IGN-1", "b", &reporter)
            .await
            .unwrap();
    });
    // the engine's BuildKit reads the Dockerfile from the uploaded context and, unlike the
    // classic builder, keeps it there even where .dockerignore excludes it (README: Builders)
    let mut expected = docker_set.clone();
    if builder == Builder::BuildKit {
        expected.insert("Dockerfile".to_string());
    }
    assert_eq!(
        image_files(our_tag),
        expected,
        "streamed context differs from docker build ({builder:?})"
    );
}

#[test]
fn dockerfile_in_an_excluded_directory_is_still_sent() {
    let _group = crate::support::group(module_path!());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("docker")).unwrap();
    std::fs::write(dir.path().join("docker/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(dir.path().join("docker/other"), "x").unwrap();
    std::fs::write(dir.path().join(".dockerignore"), "docker\n.dockerignore\n").unwrap();
    let files = build::context_files(dir.path(), "docker/Dockerfile").unwrap();
    assert_eq!(files, vec![".dockerignore", "docker/Dockerfile"]);
}
