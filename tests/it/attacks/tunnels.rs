//! Issue 29, medium 3: the front door's limits hold for upgraded connections. A bench answers
//! `101 Switching Protocols` to every `/up` request and then holds the connection open;
//! thirty visitors upgrade through the front door and send nothing. Only `--max-connections`
//! get through (an upgraded connection keeps its place under the cap), serve's open
//! descriptors stay bounded, `/healthz` answers throughout, the quiet tunnels close after
//! `--tunnel-idle-timeout`, and then there is room again. serve's open-files limit is raised
//! to its hard limit at start.

use crate::support::serve::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Answers `101` to `/up` (then reads until the visitor closes), `200 ok` to anything else.
const UPGRADER: &str = "read -r line\n\
while read -r h; do [ ${#h} -le 1 ] && break; done\n\
case \"$line\" in\n\
  *\" /up\"*) printf 'HTTP/1.1 101 Switching Protocols\\r\\nConnection: Upgrade\\r\\nUpgrade: x\\r\\n\\r\\n'; exec /bin/busybox cat >/dev/null ;;\n\
  *) printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n' ;;\n\
esac\n";

const DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY up.sh /up.sh\nEXPOSE 8080\n\
CMD [\"/bin/busybox\", \"nc\", \"-ll\", \"-p\", \"8080\", \"-e\", \"/bin/busybox\", \"sh\", \"/up.sh\"]\n";

const CAP: usize = 12;

/// An upgrade request through the front door; the stream once `101` came back.
fn upgrade(proxy: &str) -> Option<TcpStream> {
    let mut s = TcpStream::connect(proxy).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        s,
        "GET /up HTTP/1.1\r\nHost: atkt-3.bench.test\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"
    )
    .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    head.starts_with(b"HTTP/1.1 101").then_some(s)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn upgraded_connections_stay_under_the_cap_and_quiet_ones_close() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["ATKT-3"]);
    let repo = AppRepo::new();
    git(repo.path(), &["checkout", "-q", "-b", "feature/ATKT-3"]);
    repo.write("Dockerfile", DOCKERFILE);
    repo.write("up.sh", UPGRADER);
    repo.commit("a bench that upgrades every /up");
    let r = run(benchctl()
        .args(["deploy", "feature/ATKT-3", "--repo", &repo.path_str()])
        .args(["--no-link", "--url-template", "http://{issue}.bench.test"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let state = tempfile::tempdir().unwrap();
    let proxy = format!("127.0.0.1:{}", free_port());
    let s = ServeSetup::new(None, state.path())
        .front_door(&proxy)
        .args(&["--max-connections", &CAP.to_string()])
        .args(&["--tunnel-idle-timeout", "4"])
        .start();
    s.wait_until("the front door upgrades", Duration::from_secs(30), |_| {
        upgrade(&proxy).is_some()
    });
    // the tunnel just opened closes once idle
    std::thread::sleep(Duration::from_secs(6));
    let pid = s.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let words: Vec<&str> = files.split_whitespace().collect();
    assert_eq!(words[3], words[4], "the soft limit is raised: {files}");
    let before = open_fds(pid);

    let tunnels: Vec<TcpStream> = (0..30).filter_map(|_| upgrade(&proxy)).collect();
    assert!(
        (1..=CAP).contains(&tunnels.len()),
        "{} upgraded connections through a front door capped at {CAP}",
        tunnels.len()
    );
    assert_eq!(s.get("/healthz").status, 200);
    let during = open_fds(pid);
    assert!(
        during <= before + 2 * CAP + 8,
        "serve holds {during} descriptors with {} tunnels open (before: {before})",
        tunnels.len()
    );

    // nobody sends a byte: past the idle timeout every tunnel is closed by the front door
    let start = Instant::now();
    for mut t in tunnels {
        t.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 16];
        let n = t.read(&mut buf);
        assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "the tunnel stayed open"
        );
    }
    s.wait_until(
        "the descriptors are given back",
        Duration::from_secs(10),
        |_| open_fds(pid) <= before + 4,
    );
    assert!(upgrade(&proxy).is_some(), "room again under the cap");
    assert_eq!(s.get("/healthz").status, 200);
}
