//! A Compose file as real projects write it, on containers: two networks of the bench (one
//! internal), a service reached by its alias and `hostname`, `container_name`, a secret from a
//! file of the branch, a directory of the branch copied in (`./site:/www:ro`), labels and a
//! stop signal. A commit that changes only the copied files replaces only the service that
//! copies them; one that changes only a build context replaces only that service; a symlink
//! out of the branch in a copied directory is refused with exit 2 before anything is built.

use super::*;

const ISSUE_RF: &str = "STR-1";
const BRANCH: &str = "feature/STR-1-real";
const DB: &str = "benchctl-test/real-db:1";
const SECRET: &str = "secret-canary-5e1f";

const FILE: &str = r#"
services:
  proxy:
    build: proxy
    container_name: front
    ports: ["8080:8080"]
    volumes: ["./site:/www:ro"]
    secrets: [token]
    networks: [frontnet]
    depends_on: [api]
    stop_signal: SIGINT
    labels: ["team=qa", "traefik.enable=true"]
    logging: {driver: json-file}
  api:
    build: api
    hostname: api-host
    networks:
      frontnet: {aliases: [backend]}
      backnet:
    depends_on: [db]
  db:
    image: benchctl-test/real-db:1
    volumes: ["data:/data"]
    networks: [backnet]
networks:
  frontnet:
  backnet: {internal: true}
volumes:
  data:
secrets:
  token: {file: secret.txt}
"#;

/// The proxy: serves its copied site, adding the secret and what `backend` answers.
const PROXY_SH: &str = "mkdir -p /tmp/www && cp -r /www/. /tmp/www/\n\
     while true; do\n\
     /bin/busybox wget -q -O /tmp/www/api.html http://backend:9000/ 2>/dev/null\n\
     /bin/busybox wget -q -T 1 -O- http://db:5432/count > /tmp/www/db.txt 2>/dev/null || echo none > /tmp/www/db.txt\n\
     cp /run/secrets/token /tmp/www/secret.html\n\
     sleep 0.2\n\
     done &\n\
     exec /bin/busybox httpd -f -p 8080 -h /tmp/www\n";

/// The api: answers its version, hostname, the db's count and the front's page. Its fetch of
/// the front is cut after 3 s: a fetch begun as a redeploy removes the old front would wait
/// out TCP's connect timeout (about two minutes) on the address that is gone.
fn api_sh(version: &str) -> String {
    format!(
        "mkdir -p /tmp/a\n\
         while true; do\n\
         c=$(/bin/busybox wget -q -O- http://db:5432/count)\n\
         f=$(/bin/busybox timeout 3 /bin/busybox wget -q -O- http://front:8080/index.html)\n\
         echo \"{version} $(hostname) db=$c front=$f\" > /tmp/a/index.html\n\
         sleep 0.2\n\
         done &\n\
         exec /bin/busybox httpd -f -p 9000 -h /tmp/a\n"
    )
}

fn dockerfile(script: &str) -> String {
    format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY {script} /{script}\n\
         CMD [\"/bin/busybox\", \"sh\", \"/{script}\"]\n"
    )
}

fn container(service: &str) -> String {
    docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=benchctl.issue={ISSUE_RF}"),
        "--filter",
        &format!("label=benchctl.service={service}"),
    ])
    .join(" ")
}

fn deploy(repo: &AppRepo) -> Run {
    run(benchctl().args([
        "--json",
        "deploy",
        BRANCH,
        "--repo",
        &repo.path_str(),
        "--no-link",
    ]))
}

/// A branch holding `file` (the compose file), its secret, site and the proxy's and api's
/// contexts, checked out.
pub(super) fn real_files_repo(branch: &str, file: &str, secret: &str) -> AppRepo {
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", branch]);
    repo.write("compose.yaml", file);
    repo.write("secret.txt", secret);
    repo.write("site/index.html", "site v1");
    for dir in ["proxy", "api"] {
        std::fs::create_dir_all(repo.path().join(dir)).unwrap();
        std::fs::copy(BUSYBOX, repo.path().join(dir).join("busybox")).unwrap();
    }
    repo.write("proxy/Dockerfile", &dockerfile("proxy.sh"));
    repo.write("proxy/proxy.sh", PROXY_SH);
    repo.write("api/Dockerfile", &dockerfile("api.sh"));
    repo.write("api/api.sh", &api_sh("v1"));
    repo.commit("a real compose file");
    repo
}

/// Deploys the branch; the bench's address (a new web container has a port of its own).
fn deployed(repo: &AppRepo) -> String {
    let r = deploy(repo);
    assert_eq!(r.code, 0, "{}", r.all());
    let url = r.json()["url"].as_str().unwrap().to_string();
    url.trim_end_matches('/').to_string()
}

#[test]
fn a_real_compose_file_runs_and_a_commit_replaces_only_what_it_changed() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[ISSUE_RF]);
    let _db = StandIn::build_as(DB);
    let repo = real_files_repo(BRANCH, FILE, SECRET);

    let mut url = deployed(&repo);
    // what is ignored is said, and how the bench's service was chosen
    let c = run(benchctl().args(["config", BRANCH, "--repo", &repo.path_str()]));
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(c.stdout.contains("services.proxy.logging"), "{}", c.stdout);
    assert!(
        c.stdout.contains("`traefik.enable` left off"),
        "{}",
        c.stdout
    );
    wait_for(&format!("{url}/index.html"), "site v1");
    wait_for(&format!("{url}/secret.html"), SECRET);
    // the api answers by its alias on the front network, names itself by its hostname, and
    // reaches the db on the internal back network
    wait_for(&format!("{url}/api.html"), "v1 api-host db=1 front=site v1");
    let proxy = container("proxy");
    let inspect = |id: &str, f: &str| docker_lines(&["inspect", "-f", f, id]).join("");
    assert_eq!(inspect(&proxy, "{{index .Config.Labels \"team\"}}"), "qa");
    assert_eq!(
        inspect(&proxy, "{{index .Config.Labels \"traefik.enable\"}}"),
        ""
    );
    assert_eq!(inspect(&proxy, "{{.Config.StopSignal}}"), "SIGINT");
    // the proxy is on the front network only: the db is not there for it
    wait_for(&format!("{url}/db.txt"), "none");
    let api = container("api");
    let db = container("db");

    // a commit to the copied files only: the proxy is replaced, api and db keep running
    repo.write("site/index.html", "site v2");
    repo.commit("site v2");
    // the web service's new container has a port of its own
    url = deployed(&repo);
    wait_for(&format!("{url}/index.html"), "site v2");
    assert_eq!(
        (container("api"), container("db")),
        (api.clone(), db.clone())
    );
    assert_ne!(container("proxy"), proxy);

    // a commit to the api's context only: the api is rebuilt and replaced, the db kept
    repo.write("api/api.sh", &api_sh("v2"));
    repo.commit("api v2");
    // the web service's new container has a port of its own
    url = deployed(&repo);
    wait_for(&format!("{url}/api.html"), "v2 api-host db=1 front=site v2");
    assert_ne!(container("api"), api);
    assert_eq!(container("db"), db);

    // a link out of the branch in a copied directory: refused before anything is built
    std::os::unix::fs::symlink("/etc/hostname", repo.path().join("site/host")).unwrap();
    repo.write("api/api.sh", &api_sh("v3"));
    repo.commit("a link out");
    let r = deploy(&repo);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.all().contains("site/host") && r.all().contains("out of the branch"),
        "{}",
        r.all()
    );
    wait_for(&format!("{url}/api.html"), "v2 api-host db=1 front=site v2");
}

const ISSUE_SW: &str = "STR-2";
const BRANCH_SW: &str = "feature/STR-2-host";

/// A one-service file asking for what only the operator may give.
const PRIVILEGED: &str = r#"
services:
  web:
    build: .
    ports: ["8080"]
    privileged: true
    cap_add: [NET_ADMIN]
"#;

#[test]
fn what_needs_the_host_is_refused_before_any_build_until_the_operator_allows_it() {
    let _group = crate::support::group(GROUP);
    require_docker();
    let _c = Cleanup::issues(&[ISSUE_SW]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", BRANCH_SW]);
    std::fs::copy(BUSYBOX, repo.path().join("busybox")).unwrap();
    repo.write("index.html", "up");
    repo.write(
        "Dockerfile",
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY index.html /www/index.html\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    );
    let deploy = |allow: Option<&str>| {
        let mut cmd = benchctl();
        cmd.args(["deploy", BRANCH_SW, "--repo", &repo.path_str(), "--no-link"]);
        if let Some(a) = allow {
            cmd.env("BENCHCTL_COMPOSE_ALLOW", a);
        }
        run(&mut cmd)
    };
    let images = || docker_lines(&["images", "-q", "--filter", "label=benchctl.issue=STR-2"]);
    for (file, named) in [
        (PRIVILEGED.to_string(), "compose-allow = \"privileged\""),
        (
            format!("{PRIVILEGED}networks:\n  shared: {{external: true}}\n").replace(
                "cap_add: [NET_ADMIN]",
                "cap_add: [NET_ADMIN]\n    networks: [shared]",
            ),
            "compose-allow = \"external\"",
        ),
    ] {
        repo.write("compose.yaml", &file);
        repo.commit("needs the host");
        let r = deploy(None);
        assert_eq!(r.code, 2, "{}", r.all());
        assert!(r.stderr.contains(named), "{named} not in {}", r.stderr);
        assert!(images().is_empty(), "something was built: {:?}", images());
    }
    // allowed by the operator: the capability is the container's
    repo.write(
        "compose.yaml",
        &PRIVILEGED.replace("    privileged: true\n", ""),
    );
    repo.commit("a capability");
    let r = deploy(Some("cap-add"));
    assert_eq!(r.code, 0, "{}", r.all());
    let id = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        "label=benchctl.issue=STR-2",
        "--filter",
        "label=benchctl.service=web",
    ])
    .join(" ");
    let got = docker_lines(&["inspect", "-f", "{{.HostConfig.CapAdd}}", &id]);
    assert!(got[0].contains("NET_ADMIN"), "{got:?}");
    // and `privileged` goes to the engine: this machine's engine cannot start a privileged
    // container at all (its runtime lacks capabilities), so what is checked is that benchctl
    // no longer refuses it and the engine is asked
    repo.write("compose.yaml", PRIVILEGED);
    repo.commit("privileged");
    let r = deploy(Some("privileged,cap-add"));
    assert!(!r.all().contains("compose-allow"), "{}", r.all());
    assert!(
        r.code == 0 || r.all().contains("unable to apply caps"),
        "{}",
        r.all()
    );
}
