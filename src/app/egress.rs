//! The benches' egress as the operator set it (`--egress`), made so before a deploy's build and
//! at serve's start: closed means benchctl's firewall rules are in place on the engine's host
//! ([`crate::engine::egress`]). What cannot be done here (not root, the engine on another
//! host, no iptables) is a warning naming what to do, never a silent gap; an engine reached
//! over plain TCP is a warning too.

use crate::engine::egress::{self, Egress};
use crate::output::{Event, SharedReporter};

/// Makes the benches' egress what `wanted` says, where this process can; reports what it did
/// or why it could not. `remote` is the engine's host when it is not this machine.
pub async fn ensure(wanted: Egress, remote: Option<&str>, reporter: &SharedReporter) {
    if let Some(warning) = plain_tcp_engine() {
        reporter.report(Event::Warn(warning));
    }
    if wanted == Egress::Open {
        return;
    }
    if let Some(host) = remote {
        reporter.report(Event::Warn(format!(
            "the benches' egress is closed by rules on the engine's host, and the engine is on \
             {host}: run `benchctl egress close` there as root (README: Security model, Network)"
        )));
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail
    let uid = unsafe { libc::geteuid() };
    if uid != 0 {
        reporter.report(Event::Warn(format!(
            "the benches' egress is not closed: benchctl runs as uid {uid}, and the firewall \
             rules need root; run `sudo benchctl egress close` once after each boot, or pass \
             --egress open to say benches may reach the host (README: Security model, Network)"
        )));
        return;
    }
    match tokio::task::spawn_blocking(egress::close).await {
        Ok(Ok(done)) if !done.is_empty() => reporter.report(Event::Info(format!(
            "closed the benches' egress: {}",
            done.join("; ")
        ))),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => reporter.report(Event::Warn(format!(
            "the benches' egress is not closed: {e}"
        ))),
        Err(e) => reporter.report(Event::Warn(format!(
            "the benches' egress is not closed: {e}"
        ))),
    }
}

/// A warning when the engine is reached over TCP without TLS: whoever reaches that port is
/// root on the engine's host.
pub fn plain_tcp_engine() -> Option<String> {
    let get = |k: &str| std::env::var(k).ok();
    match crate::engine::endpoint::Endpoint::from_env(&get).ok()? {
        crate::engine::endpoint::Endpoint::Tcp { host, port } => Some(format!(
            "the engine at tcp://{host}:{port} is reached over plain TCP without TLS: anyone \
             who reaches that port, a bench too when egress is open, is root on its host; use \
             TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH) or ssh://"
        )),
        _ => None,
    }
}
