//! Issue 29, high 2: a bench reaches no further on the network than its own bench. With the
//! egress closed (the default, as root), a bench cannot open a connection to a stand-in cloud
//! metadata service (`169.254.169.254` added to the host's loopback), to a listener of the
//! host (through its bridge's gateway), or to another bench by its address; a `RUN` step
//! cannot reach the metadata service; `--build-network none` takes a `RUN` step off the
//! network. Each request is made with `busybox nc` (busybox's `wget` crashes in its resolver
//! here), and each has its positive control: the same request from a container on a network
//! that is not a bench's succeeds. The benches still answer on their published ports.

use crate::support::*;
use std::io::Write;
use std::net::TcpListener;
use std::process::Command;

const METADATA: &str = "169.254.169.254";
const NC_IMAGE: &str = "benchctl-test/atkn-nc:1";

/// A listener answering every connection with `canary` and closing it, until the process ends.
fn answer(listener: TcpListener, canary: &'static str) {
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let _ = conn.write_all(canary.as_bytes());
        }
    });
}

/// The metadata stand-in's address on the host's loopback, removed when dropped (when this
/// test added it).
struct LoopbackAddr(bool);

impl LoopbackAddr {
    fn add() -> LoopbackAddr {
        let out = Command::new("ip")
            .args(["addr", "add", &format!("{METADATA}/32"), "dev", "lo"])
            .output()
            .expect("ip runs (.ci/run installs iproute2)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("exists"),
            "cannot add {METADATA} to lo (this test needs root): {err}"
        );
        LoopbackAddr(out.status.success())
    }
}

impl Drop for LoopbackAddr {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new("ip")
                .args(["addr", "del", &format!("{METADATA}/32"), "dev", "lo"])
                .output();
        }
    }
}

/// Removes an image and a network when dropped.
struct Leftovers;

impl Drop for Leftovers {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", "atkn-control"])
            .output();
        let _ = Command::new("docker")
            .args(["rmi", "-f", NC_IMAGE])
            .output();
    }
}

/// `busybox nc -w 2 HOST PORT` in a container: what it received (empty when it could not
/// connect).
fn nc_in(container: &str, host: &str, port: u16) -> String {
    let port = port.to_string();
    let out = Command::new("docker")
        .args([
            "exec",
            container,
            "/bin/busybox",
            "nc",
            "-w",
            "2",
            host,
            &port,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The same from a fresh container on `network`.
fn nc_from(network: &str, host: &str, port: u16) -> String {
    let port = port.to_string();
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", network, NC_IMAGE])
        .args(["/bin/busybox", "nc", "-w", "2", host, &port])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container's address and gateway on its (one) network.
fn addr_and_gateway(container: &str) -> (String, String) {
    let l = docker_lines(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.Gateway}}{{end}}",
        container,
    ]);
    let (ip, gw) = l[0].split_once(' ').unwrap();
    (ip.to_string(), gw.to_string())
}

fn deploy(repo: &AppRepo, branch: &str, extra: &[&str]) -> Run {
    run(benchctl()
        .args([
            "--json",
            "deploy",
            branch,
            "--repo",
            &repo.path_str(),
            "--no-link",
        ])
        .args(extra))
}

#[test]
fn a_bench_and_a_build_reach_neither_the_metadata_service_nor_the_host_nor_another_bench() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKN-1", "ATKN-2", "ATKN-3", "ATKN-4"]);
    let _lo = LoopbackAddr::add();
    let _left = Leftovers;
    answer(
        TcpListener::bind((METADATA, 80)).unwrap(),
        "metadata-canary",
    );
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    answer(host, "host-canary");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n",
    )
    .unwrap();
    docker_build(dir.path(), NC_IMAGE, &[]);

    // two benches, each on its own network
    let repo = AppRepo::new();
    for b in ["feature/ATKN-1", "feature/ATKN-2"] {
        git(repo.path(), &["checkout", "-q", "-B", b, "main"]);
        let r = deploy(&repo, b, &[]);
        assert_eq!(r.code, 0, "{}", r.all());
        let url = r.json()["url"].as_str().unwrap().to_string();
        assert_eq!(http_get(&url).as_deref(), Some("main\n"), "{b} answers");
    }
    let (a, b) = ("benchctl-atkn-1", "benchctl-atkn-2");
    let (_, a_gateway) = addr_and_gateway(a);
    let (b_ip, _) = addr_and_gateway(b);
    assert_ne!(
        a_gateway,
        addr_and_gateway(b).1,
        "the benches share a network"
    );

    // from bench A: nothing
    assert_eq!(
        nc_in(a, METADATA, 80),
        "",
        "bench A reached the metadata service"
    );
    assert_eq!(
        nc_in(a, &a_gateway, host_port),
        "",
        "bench A reached the host"
    );
    let b_page = nc_in(a, &b_ip, 8080);
    assert_eq!(b_page, "", "bench A reached bench B: {b_page}");

    // the positive controls: from a network that is not a bench's, and from B's own network
    let out = Command::new("docker")
        .args(["network", "create", "atkn-control"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(nc_from("atkn-control", METADATA, 80), "metadata-canary");
    let control_gateway = docker_lines(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "atkn-control",
    ])
    .join("");
    assert_eq!(
        nc_from("atkn-control", &control_gateway, host_port),
        "host-canary"
    );
    let b_net = docker_lines(&[
        "inspect",
        "-f",
        "{{range $n, $_ := .NetworkSettings.Networks}}{{$n}}{{end}}",
        b,
    ])
    .join("");
    let mut req = Command::new("docker");
    req.args(["run", "--rm", "--network", &b_net, NC_IMAGE])
        .args(["/bin/busybox", "sh", "-c"])
        .arg(format!(
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 2 {b_ip} 8080"
        ));
    let out = req.output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("main"),
        "B's own network does not reach B: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // a RUN step: the build fails if it reaches the metadata service
    let probe = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox nc -w 2 {METADATA} 80 > /got; \
         ! /bin/busybox grep -q canary /got\"]\n\
         EXPOSE 8080\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    );
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/ATKN-3", "main"],
    );
    repo.write("Dockerfile", &probe);
    repo.commit("a build that asks the metadata service");
    let r = deploy(&repo, "feature/ATKN-3", &["--builder", "classic"]);
    assert_eq!(
        r.code,
        0,
        "a RUN step reached the metadata service: {}",
        r.all()
    );
    // its control: the same Dockerfile on a network that is not closed fails to build
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(BUSYBOX, ctx.path().join("busybox")).unwrap();
    std::fs::create_dir(ctx.path().join("www")).unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), &probe).unwrap();
    let out = Command::new("docker")
        .args([
            "build",
            "-q",
            "--network",
            "atkn-control",
            "-t",
            "benchctl-test/atkn-probe:1",
        ])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    let _ = Command::new("docker")
        .args(["rmi", "-f", "benchctl-test/atkn-probe:1"])
        .output();
    assert!(
        !out.status.success(),
        "the probe did not reach the metadata service where it is allowed: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // --build-network none: a RUN step reaches nothing, not even the host
    let reach_host = format!(
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n\
         RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox nc -w 2 172.17.0.1 {host_port} \
         | /bin/busybox grep -q host-canary\"]\n\
         EXPOSE 8080\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
    );
    git(
        repo.path(),
        &["checkout", "-q", "-B", "feature/ATKN-4", "main"],
    );
    repo.write("Dockerfile", &reach_host);
    repo.commit("a build that asks the host");
    let r = deploy(
        &repo,
        "feature/ATKN-4",
        &["--builder", "classic", "--build-network", "none"],
    );
    assert_ne!(
        r.code,
        0,
        "a RUN step reached the host without a network: {}",
        r.all()
    );
    let r = deploy(&repo, "feature/ATKN-4", &["--builder", "classic"]);
    assert_eq!(
        r.code,
        0,
        "the default build network does not reach the host: {}",
        r.all()
    );

    for issue in ["ATKN-1", "ATKN-2", "ATKN-3", "ATKN-4"] {
        let r = run(benchctl().args(["teardown", issue, "--keep-link"]));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    let left = docker_lines(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=benchctl.issue=ATKN-1",
    ]);
    assert!(left.is_empty(), "the bench's network stays: {left:?}");
}
