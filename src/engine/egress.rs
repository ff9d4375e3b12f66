//! What a bench and a build may reach, kept in the host's firewall (issue 29). Every bench's
//! network is a bridge whose interface starts with [`BRIDGE_PREFIX`]; benchctl keeps two chains
//! of its own in iptables' filter table and hooks them in front of the host's and Docker's:
//!
//! - `BENCHCTL-IN`, from `INPUT -i bcb-+`: a bench reaches no listener of the host (serve's
//!   ports, the dashboard, an engine on TCP, the host's metadata stand-ins), but DNS (port 53)
//!   and the replies of connections the host opened (the front door's, the published port's).
//! - `BENCHCTL-LL`, from `DOCKER-USER -i bcb-+`, `DOCKER-USER -i docker0` and `INPUT -i
//!   docker0`: nothing on the bridge of a bench or of the engine's default network (where build
//!   steps run) reaches a link-local address: `169.254.169.254` hands out a cloud VM's
//!   credentials.
//!
//! Benches on separate bridges do not reach each other: Docker's isolation chains drop traffic
//! between bridges. The rules are added by `close` and taken out by `open`, as root on the
//! engine's host, with `iptables -w` (the same iptables Docker uses); no input reaches them.

use crate::{Error, Result};
use std::process::Command;

/// The start of every bench bridge's interface name.
pub const BRIDGE_PREFIX: &str = "bcb-";

/// The chain a bench's traffic to the host goes through.
pub const CHAIN_IN: &str = "BENCHCTL-IN";
/// The chain that drops link-local destinations.
pub const CHAIN_LL: &str = "BENCHCTL-LL";

/// What benches may reach (`egress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Egress {
    /// Neither the host's listeners nor link-local addresses; other benches never.
    #[default]
    Closed,
    /// The engine's defaults: everything the host's network reaches (the operator's choice).
    Open,
}

impl Egress {
    pub fn parse(s: &str) -> Option<Egress> {
        match s {
            "closed" => Some(Egress::Closed),
            "open" => Some(Egress::Open),
            _ => None,
        }
    }
}

/// The interface pattern of every bench bridge (`bcb-+`).
fn benches() -> String {
    format!("{BRIDGE_PREFIX}+")
}

/// The rules of benchctl's chains, in order.
fn chain_rules() -> Vec<(&'static str, Vec<String>)> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (CHAIN_LL, v(&["-d", "169.254.0.0/16", "-j", "DROP"])),
        (
            CHAIN_IN,
            v(&[
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "RETURN",
            ]),
        ),
        (CHAIN_IN, v(&["-p", "udp", "--dport", "53", "-j", "RETURN"])),
        (CHAIN_IN, v(&["-p", "tcp", "--dport", "53", "-j", "RETURN"])),
        (CHAIN_IN, v(&["-j", "DROP"])),
    ]
}

/// Where the chains are hooked in: (chain, rule), each inserted first.
fn hooks() -> Vec<(&'static str, Vec<String>)> {
    let b = benches();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("INPUT", v(&["-i", &b, "-j", CHAIN_IN])),
        ("INPUT", v(&["-i", "docker0", "-j", CHAIN_LL])),
        ("DOCKER-USER", v(&["-i", &b, "-j", CHAIN_LL])),
        ("DOCKER-USER", v(&["-i", "docker0", "-j", CHAIN_LL])),
    ]
}

/// Runs `iptables -w ARGS`; its exit status and stderr.
fn iptables(args: &[&str]) -> Result<(bool, String)> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|e| {
            Error::usage(format!(
                "cannot run iptables to close the benches' egress: {e}; install iptables, or \
                 set `egress = \"open\"` (README: Security model, Network)"
            ))
        })?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

fn must(args: &[&str]) -> Result<()> {
    match iptables(args)? {
        (true, _) => Ok(()),
        (false, why) => Err(Error::usage(format!(
            "`iptables {}` failed: {why}; closing the benches' egress needs root on the \
             engine's host (or set `egress = \"open\"`, README: Security model, Network)",
            args.join(" ")
        ))),
    }
}

/// Whether every hook is in place.
pub fn closed() -> Result<bool> {
    for (chain, rule) in hooks() {
        let mut args = vec!["-C", chain];
        args.extend(rule.iter().map(String::as_str));
        if !iptables(&args)?.0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Adds benchctl's chains and hooks (again, when some are missing); says what it did.
pub fn close() -> Result<Vec<String>> {
    if closed()? {
        return Ok(Vec::new());
    }
    if !iptables(&["-n", "-L", "DOCKER-USER"])?.0 {
        return Err(Error::usage(
            "the host has no DOCKER-USER chain: the engine does not manage iptables here, so \
             benchctl cannot close the benches' egress (README: Security model, Network)",
        ));
    }
    let mut done = Vec::new();
    for chain in [CHAIN_IN, CHAIN_LL] {
        if !iptables(&["-n", "-L", chain])?.0 {
            must(&["-N", chain])?;
        }
        must(&["-F", chain])?;
    }
    for (chain, rule) in chain_rules() {
        let mut args = vec!["-A", chain];
        args.extend(rule.iter().map(String::as_str));
        must(&args)?;
    }
    for (chain, rule) in hooks() {
        let mut check = vec!["-C", chain];
        check.extend(rule.iter().map(String::as_str));
        if iptables(&check)?.0 {
            continue;
        }
        let mut add = vec!["-I", chain, "1"];
        add.extend(rule.iter().map(String::as_str));
        must(&add)?;
        done.push(format!("iptables -I {chain} 1 {}", rule.join(" ")));
    }
    Ok(done)
}

/// Takes benchctl's hooks and chains out; says what it did.
pub fn open() -> Result<Vec<String>> {
    let mut done = Vec::new();
    for (chain, rule) in hooks() {
        loop {
            let mut del = vec!["-D", chain];
            del.extend(rule.iter().map(String::as_str));
            if !iptables(&del)?.0 {
                break;
            }
            done.push(format!("iptables -D {chain} {}", rule.join(" ")));
        }
    }
    for chain in [CHAIN_IN, CHAIN_LL] {
        if iptables(&["-n", "-L", chain])?.0 {
            must(&["-F", chain])?;
            must(&["-X", chain])?;
            done.push(format!("iptables -X {chain}"));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_drop_link_local_and_the_hosts_listeners_but_not_replies_or_dns() {
        let rules: Vec<String> = chain_rules()
            .iter()
            .map(|(c, r)| format!("{c} {}", r.join(" ")))
            .collect();
        assert_eq!(rules[0], "BENCHCTL-LL -d 169.254.0.0/16 -j DROP");
        // replies and DNS come before the drop
        let drop = rules
            .iter()
            .position(|r| r == "BENCHCTL-IN -j DROP")
            .unwrap();
        for allowed in ["ESTABLISHED,RELATED", "--dport 53"] {
            let at = rules.iter().position(|r| r.contains(allowed)).unwrap();
            assert!(at < drop, "{allowed} after the drop: {rules:?}");
        }
        let hooked: Vec<String> = hooks()
            .iter()
            .map(|(c, r)| format!("{c} {}", r.join(" ")))
            .collect();
        assert!(
            hooked.contains(&"INPUT -i bcb-+ -j BENCHCTL-IN".to_string()),
            "{hooked:?}"
        );
        assert!(hooked.contains(&"DOCKER-USER -i docker0 -j BENCHCTL-LL".to_string()));
        assert_eq!(Egress::parse("closed"), Some(Egress::Closed));
        assert_eq!(Egress::parse("shut"), None);
    }
}
