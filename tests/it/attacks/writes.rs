//! A branch's symlinks: benchctl never writes through one (the template's Dockerfile named as
//! a link to a host file), and a link to a host file never brings the file's content into the
//! image (`COPY . /src` carries the link itself, `COPY leak /leak` fails as `docker build`
//! does).

use crate::support::*;

#[test]
fn the_template_is_never_written_through_a_branchs_symlink() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKW-1"]);
    // a file the service can write: a queued job, a key, a config
    let host = tempfile::tempdir().unwrap();
    let victim = host.path().join("queued-job.json");
    std::fs::write(&victim, "{\"victim\": true}\n").unwrap();
    let templates = tempfile::tempdir().unwrap();
    let web = templates.path().join("dockerfiles/web");
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(web.join("Dockerfile"), APP_DOCKERFILE).unwrap();

    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKW-1"]);
    std::fs::remove_file(repo.path().join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&victim, repo.path().join(".benchctl.Dockerfile")).unwrap();
    repo.write("www/index.html", "templated\n");
    repo.commit("a link where the template goes");
    let r = run(benchctl()
        .args([
            "--json",
            "deploy",
            "feature/ATKW-1",
            "--repo",
            &repo.path_str(),
            "--template",
            "web",
        ])
        .env("BENCHCTL_TEMPLATES_DIR", templates.path()));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "{\"victim\": true}\n",
        "the template was written through the branch's symlink"
    );
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url).as_deref(), Some("templated\n"));
    let r = run(benchctl().args(["teardown", "ATKW-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn a_symlink_to_a_host_file_never_brings_its_content_into_the_image() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKW-2"]);
    let host = tempfile::tempdir().unwrap();
    let secret = host.path().join("host-secret");
    std::fs::write(&secret, "host-canary-9e9e\n").unwrap();
    let target = secret.to_string_lossy().into_owned();

    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKW-2"]);
    std::os::unix::fs::symlink(&secret, repo.path().join("leak")).unwrap();
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace("COPY www /www\n", "COPY www /www\nCOPY . /src\n"),
    );
    repo.commit("a link to a host file");
    let r = run(benchctl().args(["deploy", "feature/ATKW-2", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 0, "{}", r.all());
    let id = issue_containers("ATKW-2")[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    // the link itself is in the image, pointing where it pointed; its target is not
    let link = docker_lines(&["exec", &id, "/bin/busybox", "readlink", "/src/leak"]);
    assert_eq!(link, vec![target.clone()]);
    let cat = std::process::Command::new("docker")
        .args(["exec", &id, "/bin/busybox", "cat", "/src/leak"])
        .output()
        .unwrap();
    assert!(!cat.status.success());
    assert!(!String::from_utf8_lossy(&cat.stdout).contains("host-canary-9e9e"));
    let r = run(benchctl().args(["teardown", "ATKW-2"]));
    assert_eq!(r.code, 0, "{}", r.all());

    // copying the link by name fails, as `docker build` does; nothing is left running
    repo.write(
        "Dockerfile",
        &APP_DOCKERFILE.replace("COPY www /www\n", "COPY www /www\nCOPY leak /leak\n"),
    );
    repo.commit("copy the link");
    let r = run(benchctl().args(["deploy", "feature/ATKW-2", "--repo", &repo.path_str()]));
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("leak"), "{}", r.stderr);
    assert!(!r.all().contains("host-canary-9e9e"), "{}", r.all());
    assert!(issue_containers("ATKW-2").is_empty());

    // a Dockerfile that is a link to a host file is refused before its content is read
    std::fs::write(&secret, "FROM scratch\nLABEL x=host-canary-9e9e\n").unwrap();
    std::fs::remove_file(repo.path().join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&secret, repo.path().join("Dockerfile")).unwrap();
    repo.commit("the Dockerfile is a host file");
    let r = run(benchctl().args(["deploy", "feature/ATKW-2", "--repo", &repo.path_str()]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(!r.all().contains("host-canary-9e9e"), "{}", r.all());
    assert!(docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=ATKW-2"]).is_empty());
}
