//! The Compose files teams already have: every sample of docker/awesome-compose (read from
//! `../shared/fixtures/compose/awesome-compose/`, never copied into the project) made a branch
//! and read by `benchctl config` as a deploy reads it. The 31 samples that need nothing from
//! the host are accepted; the 8 that need the host (SOURCES.md there names them) are refused
//! with exit 2 naming what they need and the operator's switch.

use crate::support::*;
use std::path::{Path, PathBuf};

/// The samples that need the host, with what their refusal must name.
const NEED_THE_HOST: &[(&str, &[&str])] = &[
    ("portainer", &["Docker socket", "host-paths"]),
    ("traefik-golang", &["Docker socket", "host-paths"]),
    ("minecraft", &["~/minecraft_data", "host-paths"]),
    ("wireguard", &["NET_ADMIN", "cap-add"]),
    ("plex", &["network_mode", "host-namespaces"]),
    ("pihole-cloudflared-DoH", &["NET_ADMIN", "cap-add"]),
    (
        "wasmedge-kafka-mysql",
        &["runtime", "compose-allow = \"runtime\""],
    ),
    (
        "wasmedge-mysql-nginx",
        &["runtime", "compose-allow = \"runtime\""],
    ),
];

pub(crate) fn corpus() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/compose/awesome-compose");
    assert!(
        dir.join("wordpress-mysql").is_dir(),
        "the awesome-compose samples are missing at {} (shared fixtures)",
        dir.display()
    );
    dir
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            // the fixtures are read-only; the branch's files are not
            let mut p = std::fs::metadata(&dest).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o644);
            std::fs::set_permissions(&dest, p).unwrap();
        }
    }
}

#[test]
fn the_awesome_compose_samples_are_accepted_or_refused_for_what_they_need() {
    let _group = crate::support::group(module_path!());
    let root = corpus();
    let mut samples: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 39, "{samples:?}");
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q", "-b", "main"]);
    std::fs::write(repo.path().join("README"), "corpus\n").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "root"]);
    let (mut accepted, mut refused, mut wrong) = (0, 0, Vec::new());
    for (i, name) in samples.iter().enumerate() {
        let branch = format!("feature/AWC-{}-{}", i + 1, name.to_lowercase());
        git(repo.path(), &["checkout", "-q", "--orphan", &branch]);
        git(repo.path(), &["rm", "-rq", "--cached", "."]);
        for e in std::fs::read_dir(repo.path()).unwrap() {
            let e = e.unwrap();
            if e.file_name() != ".git" {
                let p = e.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(p).unwrap()
                } else {
                    std::fs::remove_file(p).unwrap()
                }
            }
        }
        copy_dir(&root.join(name), repo.path());
        git(repo.path(), &["add", "-A"]);
        git(repo.path(), &["commit", "-q", "-m", name]);
        let mut cmd = benchctl();
        cmd.args(["config", &branch, "--repo", &repo.path().to_string_lossy()]);
        let r = run(&mut cmd);
        match NEED_THE_HOST.iter().find(|(n, _)| n == name) {
            Some((_, parts)) => {
                let named = parts.iter().all(|p| r.stderr.contains(p));
                if r.code == 2 && named {
                    refused += 1;
                } else {
                    wrong.push(format!(
                        "{name}: want exit 2 naming {parts:?}, got {}: {}",
                        r.code,
                        r.all()
                    ));
                }
            }
            None if r.code == 0 => accepted += 1,
            None => wrong.push(format!("{name}: want exit 0, got {}: {}", r.code, r.all())),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    assert_eq!((accepted, refused), (31, 8));
}
