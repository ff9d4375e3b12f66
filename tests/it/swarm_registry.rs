//! The swarm backend with a registry: the image is pushed (credentials from the environment,
//! named when missing) and the service runs it by digest. In the swarm module's group (one
//! swarm for all).

use crate::support::registry::*;
use crate::support::swarm::*;
use crate::support::*;

#[test]
fn with_a_registry_the_image_is_pushed_and_the_service_runs_it_by_digest() {
    let _group = crate::support::group("it::swarm");
    let _swarm = SwarmGuard::acquire();
    let _cleanup = Cleanup::issues(&["SWR-1", "SWR-2", "SWR-3"]);
    let registry = Registry::start();
    let repo = swarm_app();
    let reg = ["--no-link", "--registry", &registry.host];

    // the registry wants credentials: without them the push fails and says where they go
    let r = deploy(&mut swarm_cmd(), &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.all().contains("cannot push"), "{}", r.all());
    assert!(r.all().contains("BENCHCTL_REGISTRY_USER"), "{}", r.all());
    assert!(service_of("SWR-1").is_none());

    // from the environment
    let mut cmd = swarm_cmd();
    cmd.env("BENCHCTL_REGISTRY_USER", REGISTRY_USER)
        .env("BENCHCTL_REGISTRY_PASSWORD", REGISTRY_PASSWORD);
    let r = deploy(&mut cmd, &repo, "SWR-1", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("main\n"));
    let svc = service_of("SWR-1").unwrap();
    let image = svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let prefix = format!("{}/benchctl/swr-1:", registry.host);
    assert!(image.starts_with(&prefix), "{image}");
    let (tag, digest) = image[prefix.len()..].split_once('@').unwrap();
    assert!(
        digest.starts_with("sha256:"),
        "referenced by digest: {image}"
    );
    // the registry holds that tag, and its manifest is that digest
    let manifest = registry.get(&format!("/v2/benchctl/swr-1/manifests/{tag}"));
    assert!(
        manifest.contains(&format!("docker-content-digest: {digest}")),
        "{manifest}"
    );

    // from `docker login`'s config.json
    let config = tempfile::tempdir().unwrap();
    let auth = base64(&format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}"));
    let json = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host);
    std::fs::write(config.path().join("config.json"), json).unwrap();
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", config.path());
    let r = deploy(&mut cmd, &repo, "SWR-2", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());

    // from docker's credential helper (`credsStore`), asked as the docker CLI asks it
    let helper_dir = tempfile::tempdir().unwrap();
    let helper = helper_dir.path().join("docker-credential-benchtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread reg\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{REGISTRY_USER}\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}' \"$reg\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        store.path().join("config.json"),
        r#"{"credsStore":"benchtest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = swarm_cmd();
    cmd.env("DOCKER_CONFIG", store.path()).env("PATH", path);
    let r = deploy(&mut cmd, &repo, "SWR-3", 20, &reg);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!r.all().contains(REGISTRY_PASSWORD));

    for issue in ["SWR-1", "SWR-2", "SWR-3"] {
        let r = run(swarm_cmd().args(["--registry", &registry.host, "teardown", issue]));
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(service_of(issue).is_none());
        let filter = format!("label=benchctl.issue={issue}");
        let images = docker_lines(&["images", "-q", "--filter", &filter]);
        assert!(images.is_empty(), "images of {issue} left: {images:?}");
    }
}
