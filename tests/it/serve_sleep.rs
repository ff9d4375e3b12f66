//! serve puts unused benches to sleep and wakes them on demand: a bench without traffic for
//! `--sleep-after` is stopped in place (its link stays), a request through serve's proxy
//! (`--proxy-listen`, routed by Host) wakes it and is answered, a WebSocket is echoed through
//! the proxy, and past `--wake-hold` a browser gets the "waking up" page. serve's idle clock
//! sees every bench on the engine: this module's tests run alone.

use crate::support::serve::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A WebSocket echo server for one connection on stdin/stdout, in busybox sh (RFC 6455,
/// section 4.2.2 for the handshake, 5.2-5.3 for frames): small frames, unmasked back. A
/// request without `Upgrade` gets a plain 200, for the readiness probe.
const WS_ECHO: &str = r#"#!/bin/busybox sh
B=/bin/busybox
key=
while read -r line; do
  line=$(printf '%s' "$line" | $B tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in
    [Ss]ec-[Ww]eb[Ss]ocket-[Kk]ey:*) key=$(printf '%s' "${line#*:}" | $B tr -d ' ') ;;
  esac
done
if [ -z "$key" ]; then
  printf 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n'
  exit 0
fi
accept=$(printf '%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11' "$key" | $B sha1sum | $B cut -c1-40 | $B xxd -r -p | $B base64)
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n' "$accept"
while :; do
  set -- $($B dd bs=1 count=2 2>/dev/null | $B od -An -tu1)
  [ $# -lt 2 ] && exit 0
  op=$(( $1 & 15 )); len=$(( $2 & 127 ))
  [ $op -eq 8 ] && exit 0
  set -- $($B dd bs=1 count=4 2>/dev/null | $B od -An -tu1)
  m0=$1; m1=$2; m2=$3; m3=$4
  out=; i=0
  for b in $($B dd bs=1 count=$len 2>/dev/null | $B od -An -tu1); do
    case $((i % 4)) in 0) m=$m0 ;; 1) m=$m1 ;; 2) m=$m2 ;; *) m=$m3 ;; esac
    out="$out\\$(printf '%03o' $(( b ^ m )))"
    i=$((i + 1))
  done
  printf "\\$(printf '%03o' $((128 | op)))\\$(printf '%03o' $len)$out"
done
"#;

const WS_DOCKERFILE: &str = "FROM scratch\nCOPY busybox /bin/busybox\nCOPY ws.sh /ws.sh\nEXPOSE 8080\nCMD [\"/bin/busybox\", \"nc\", \"-ll\", \"-p\", \"8080\", \"-e\", \"/ws.sh\"]\n";

/// Opens a WebSocket through the proxy, sends `text` and returns what comes back.
fn ws_echo(proxy: &str, host: &str, text: &str) -> String {
    let mut s = TcpStream::connect(proxy).expect("the proxy listens");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    // the answer's head, byte by byte (frames may follow it)
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455's own example key and accept
    assert!(
        head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the bench's accept passes through: {head}"
    );
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, c)| c ^ mask[i % 4]));
    s.write_all(&frame).unwrap();
    let mut hdr = [0u8; 2];
    s.read_exact(&mut hdr).unwrap();
    assert_eq!(hdr[0], 0x81, "a final text frame");
    let mut payload = vec![0u8; (hdr[1] & 0x7f) as usize];
    s.read_exact(&mut payload).unwrap();
    String::from_utf8_lossy(&payload).into_owned()
}

#[test]
fn an_idle_bench_sleeps_and_a_request_through_the_proxy_wakes_it() {
    let _group = crate::support::group(module_path!());
    require_docker();
    let _c = Cleanup::issues(&["SLW-1", "SLW-2"]);
    let t = serve_tracker();
    t.add_issue("SLW-1").add_issue("SLW-2");
    let repo = AppRepo::new();
    repo.branch_with("feature/SLW-1", "slw-1\n");
    repo.write("Dockerfile", WS_DOCKERFILE);
    repo.write("ws.sh", WS_ECHO);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        repo.path().join("ws.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    repo.branch_with("feature/SLW-2", "slw-2\n");
    let template = "http://{issue}.bench.test";
    for key in ["SLW-1", "SLW-2"] {
        let branch = format!("feature/{key}");
        let r = run(benchctl()
            .args(["deploy", &branch, "--repo", &repo.path_str()])
            .args(["--url-template", template])
            .tracker(&t, TOKEN, ORG));
        assert_eq!(r.code, 0, "{}", r.all());
    }
    assert_eq!(
        bench_url(&t, "SLW-1").as_deref(),
        Some("http://slw-1.bench.test/")
    );
    let state = tempfile::tempdir().unwrap();
    let proxy = format!("127.0.0.1:{}", free_port());
    let mut s = ServeSetup::new(Some(&t), state.path())
        .args(&["--gc-interval", "0", "--url-template", template])
        .args(&["--sleep-after", "3s", "--sleep-sample", "1s"])
        .args(&["--proxy-listen", &proxy, "--wake-hold", "60"])
        .start();
    // unused, both sleep: stopped in place, the link kept
    s.wait_until("both benches sleep", Duration::from_secs(60), |_| {
        bench_state("SLW-1") == "exited" && bench_state("SLW-2") == "exited"
    });
    assert_eq!(listed("SLW-1")["state"], "sleeping", "{}", s.log());
    assert_eq!(
        bench_url(&t, "SLW-1").as_deref(),
        Some("http://slw-1.bench.test/"),
        "the link stays"
    );
    assert!(s.metric("benchctl_sleeps_total{reason=\"idle\"}") >= 2);
    // the gauges of what sleeping saves
    assert!(s.metric("benchctl_benches{group=\"sleeping\"}") >= 2);
    assert!(
        s.metric("benchctl_bench_memory_bytes{group=\"sleeping\"}") >= 2 * (512 << 20),
        "{}",
        s.get("/metrics").body
    );

    // a request wakes it and is answered, not dropped
    let (code, _, body) = get_via(&proxy, "SLW-1.bench.test:80", "*/*");
    assert_eq!((code, body.as_str()), (200, "slw-1\n"), "{}", s.log());
    assert_eq!(bench_state("SLW-1"), "running");
    assert_eq!(listed("SLW-1")["state"], "running");
    assert!(
        s.metric("benchctl_wakes_total{trigger=\"request\",result=\"done\"}") >= 1,
        "{}",
        s.get("/metrics").body
    );
    assert!(s.metric("benchctl_proxy_requests_total{issue=\"SLW-1\"}") >= 1);
    // put to sleep by another process while the proxy still routes to it: woken all the same
    let r = run(benchctl().args(["sleep", "SLW-1"]));
    assert_eq!(r.code, 0, "{}", r.all());
    let (code, _, body) = get_via(&proxy, "slw-1.bench.test", "*/*");
    assert_eq!((code, body.as_str()), (200, "slw-1\n"), "{}", s.log());
    // a host no bench has
    let (code, _, body) = get_via(&proxy, "nobody.bench.test", "*/*");
    assert_eq!(code, 404, "{body}");

    // a WebSocket through the proxy (to a sleeping bench: woken first)
    assert_eq!(
        ws_echo(&proxy, "slw-2.bench.test", "hello"),
        "hello",
        "{}",
        s.log()
    );
    assert_eq!(bench_state("SLW-2"), "running");
    s.terminate();

    // the dashboard's button wakes a sleeping bench (from its own page only)
    let own = format!("127.0.0.1:{}", free_port());
    let s = ServeSetup::new(Some(&t), state.path())
        .args(&["--gc-interval", "0", "--url-template", template])
        .args(&["--sleep-after", "2s", "--sleep-sample", "1s"])
        .args(&["--proxy-listen", &proxy, "--wake-hold", "0"])
        .args(&["--dashboard", "--dashboard-listen", &own])
        .start();
    s.wait_until("SLW-1 sleeps again", Duration::from_secs(60), |_| {
        bench_state("SLW-1") == "exited"
    });
    let page = http(&own, "GET", "/bench/SLW-1", &[], b"").body;
    assert!(page.contains("Wake it"), "{page}");
    let evil = [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    let a = http(&own, "POST", "/bench/SLW-1/wake", &evil, b"");
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(bench_state("SLW-1"), "exited");
    let a = http(&own, "POST", "/bench/SLW-1/wake", &[], b"");
    assert_eq!(a.status, 303, "{}", a.body);
    s.wait_until("the button woke SLW-1", Duration::from_secs(60), |_| {
        bench_state("SLW-1") == "running"
    });
    s.wait_until("the wake is counted", Duration::from_secs(30), |s| {
        s.metric("benchctl_wakes_total{trigger=\"dashboard\",result=\"done\"}") >= 1
    });

    // with no hold, a browser gets the page that reloads itself while the bench wakes
    s.wait_until("SLW-1 sleeps again", Duration::from_secs(60), |_| {
        bench_state("SLW-1") == "exited"
    });
    let (code, head, body) = get_via(&proxy, "slw-1.bench.test", "text/html,*/*");
    assert_eq!(code, 503, "{head}\n{body}");
    assert!(body.contains("SLW-1 is waking up"), "{body}");
    assert!(body.contains("http-equiv=\"refresh\""), "{body}");
    s.wait_until(
        "SLW-1 woke behind the page",
        Duration::from_secs(60),
        |_| get_via(&proxy, "slw-1.bench.test", "text/html").0 == 200,
    );
}
