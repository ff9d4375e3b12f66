//! A container's inbound use, read from its network namespace through `/proc/<pid>/net` on
//! the engine's host: the TCP connections it accepted (`PassiveOpens` of `/proc/net/snmp`) and
//! those open now from another host (`/proc/net/tcp`, `tcp6`: established on a listening port,
//! the peer not loopback). Bytes a bench sends or receives on its own initiative (polling the
//! internet, a broadcast on its bridge) are not use. The process is checked to be the
//! container's (its network namespace is the one the engine keeps at the container's
//! `SandboxKey`), so a remote engine, or a process id reused, gives no reading.

use crate::engine::power::Inbound;
use std::collections::HashSet;

/// The reading of process `pid`, whose network namespace must be the one bound at
/// `sandbox_key`.
pub fn read(pid: i64, sandbox_key: &str) -> Option<Inbound> {
    use std::os::unix::fs::MetadataExt;
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let inode = ns
        .to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse::<u64>()
        .ok()?;
    if std::fs::metadata(sandbox_key).ok()?.ino() != inode {
        return None;
    }
    let snmp = std::fs::read_to_string(format!("/proc/{pid}/net/snmp")).ok()?;
    let tcp: String = ["tcp", "tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(format!("/proc/{pid}/net/{f}")).ok())
        .collect();
    Some(Inbound {
        accepted: passive_opens(&snmp)?,
        open: open_from_outside(&tcp),
    })
}

/// `PassiveOpens` of the `Tcp:` lines of `/proc/net/snmp` (a header line, then values).
fn passive_opens(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let names = tcp.next()?.split_whitespace();
    let values = tcp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == "PassiveOpens")
        .and_then(|(_, v)| v.parse().ok())
}

/// Connections established on a listening port from a peer that is not loopback, over the
/// lines of `/proc/net/tcp` and `tcp6` (`sl local rem st ...`, addresses in hex).
fn open_from_outside(tcp: &str) -> u32 {
    let rows: Vec<(&str, &str, &str)> = tcp
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace().skip(1);
            Some((w.next()?, w.next()?, w.next()?))
        })
        .collect();
    let port = |addr: &str| addr.rsplit(':').next().unwrap_or("").to_string();
    let listening: HashSet<String> = rows
        .iter()
        .filter(|(_, _, st)| *st == "0A")
        .map(|(local, _, _)| port(local))
        .collect();
    let loopback = |addr: &str| {
        let ip = addr.split(':').next().unwrap_or("");
        // 127.x.x.x is stored little-endian (`0100007F`); ::1 and ::ffff:127.x likewise
        match ip.len() {
            8 => ip.ends_with("7F"),
            32 => {
                ip == "00000000000000000000000001000000"
                    || ip.ends_with("7F") && ip.starts_with("0000000000000000FFFF0000")
            }
            _ => false,
        }
    };
    rows.iter()
        .filter(|(local, rem, st)| {
            *st == "01" && listening.contains(&port(local)) && !loopback(rem)
        })
        .count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a Linux 6.1 kernel writes them (Debian bookworm), from a container running busybox
    /// httpd on 8080 with one visitor, one connection to itself and one of its own outward.
    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 120\n\
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails\n\
Tcp: 1 200 120000 -1 4 7 0\nUdp: InDatagrams NoPorts\nUdp: 3 0\n";
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0\n\
   1: 020011AC:1F90 010011AC:B3A2 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0\n\
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0\n\
   3: 020011AC:D1F0 08080808:0050 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0\n";

    #[test]
    fn only_accepted_and_visiting_connections_are_use() {
        assert_eq!(passive_opens(SNMP), Some(7));
        // the visitor on 8080 counts; the connection to itself and the one it opened do not
        assert_eq!(open_from_outside(TCP), 1);
        assert_eq!(passive_opens("Ip: x\nIp: 1\n"), None);
    }
}
