//! Where the engine is (`DOCKER_HOST`, TLS, ssh), read as the docker CLI reads it, and what
//! its errors mean for the user.

use crate::{Error, Result};
use bollard::Docker;

/// Where the engine is, as the docker CLI reads it from `DOCKER_HOST`, `DOCKER_TLS_VERIFY`
/// and `DOCKER_CERT_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    /// `tcp://host:port` without TLS.
    Tcp {
        host: String,
        port: u16,
    },
    /// `tcp://host:port` (or `https://`) with TLS: client certificate and CA from `cert_path`.
    Tls {
        host: String,
        port: u16,
        cert_path: std::path::PathBuf,
    },
    /// `ssh://[user@]host[:port]`: the engine behind the remote `docker system dial-stdio`.
    Ssh {
        url: String,
        host: String,
    },
}

impl Endpoint {
    /// Reads the endpoint as the docker CLI does: `DOCKER_HOST` (default the local socket);
    /// TLS when `DOCKER_TLS_VERIFY` is non-empty, certificates in `DOCKER_CERT_PATH` (default
    /// `~/.docker`).
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint> {
        let host = get("DOCKER_HOST")
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let tls = get("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty());
        let cert_path = get("DOCKER_CERT_PATH")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(get("HOME").unwrap_or_else(|| "/".into())).join(".docker")
            });
        let bad = |why: &str| {
            Err(Error::usage(format!(
                "DOCKER_HOST `{host}` {why}; use unix:///path, tcp://host:port or ssh://user@host"
            )))
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return bad("names no socket");
            }
            return Ok(Endpoint::Unix(host.clone()));
        }
        if let Some(rest) = host.strip_prefix("ssh://") {
            let authority = rest.split('/').next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let name = match hostport.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
                _ => hostport,
            };
            if name.is_empty() {
                return bad("names no host");
            }
            return Ok(Endpoint::Ssh {
                url: host.clone(),
                host: name.trim_matches(['[', ']']).to_string(),
            });
        }
        let (rest, https) = match (
            host.strip_prefix("tcp://"),
            host.strip_prefix("https://"),
            host.strip_prefix("http://"),
        ) {
            (Some(r), _, _) => (r, false),
            (_, Some(r), _) => (r, true),
            (_, _, Some(r)) => (r, false),
            _ => return bad("has an unknown scheme"),
        };
        let authority = rest.trim_end_matches('/');
        let (name, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
                Ok(p) => (h, p),
                Err(_) => return bad("has a port that is not a number"),
            },
            _ => (authority, if tls || https { 2376 } else { 2375 }),
        };
        let name = name.trim_matches(['[', ']']).to_string();
        if name.is_empty() {
            return bad("names no host");
        }
        Ok(if tls || https {
            Endpoint::Tls {
                host: name,
                port,
                cert_path,
            }
        } else {
            Endpoint::Tcp { host: name, port }
        })
    }

    /// The remote engine's host name (benches publish their ports there), `None` for a local
    /// socket.
    pub fn remote_host(&self) -> Option<&str> {
        match self {
            Endpoint::Unix(_) => None,
            Endpoint::Tcp { host, .. }
            | Endpoint::Tls { host, .. }
            | Endpoint::Ssh { host, .. } => Some(host),
        }
    }

    pub(crate) fn connect(&self) -> std::result::Result<Docker, bollard::errors::Error> {
        use bollard::API_DEFAULT_VERSION as V;
        const TIMEOUT: u64 = 120;
        let bracket = |h: &str| {
            if h.contains(':') {
                format!("[{h}]")
            } else {
                h.to_string()
            }
        };
        match self {
            Endpoint::Unix(url) => Docker::connect_with_unix(url, TIMEOUT, V),
            Endpoint::Tcp { host, port } => {
                Docker::connect_with_http(&format!("tcp://{}:{port}", bracket(host)), TIMEOUT, V)
            }
            Endpoint::Tls {
                host,
                port,
                cert_path,
            } => Docker::connect_with_ssl(
                &format!("tcp://{}:{port}", bracket(host)),
                &cert_path.join("key.pem"),
                &cert_path.join("cert.pem"),
                &cert_path.join("ca.pem"),
                TIMEOUT,
                V,
            ),
            Endpoint::Ssh { url, .. } => Docker::connect_with_ssh(url, TIMEOUT, V, None),
        }
    }
}

/// Where the engine is expected, for error messages.
pub fn engine_location() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => format!("DOCKER_HOST={h}"),
        _ => "unix:///var/run/docker.sock (DOCKER_HOST is not set)".to_string(),
    }
}

/// An error with its causes (refused, TLS certificate, ...), which hyper keeps in the source
/// chain.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let text = inner.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = inner.source();
    }
    out
}

/// Turns a bollard error into a message for the user.
pub fn describe_engine_error(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { message, .. } => message.clone(),
        B::DockerStreamError { error } => error.clone(),
        B::HyperResponseError { .. }
        | B::HyperLegacyError { .. }
        | B::IOError { .. }
        | B::SocketNotFoundError(_)
        | B::RequestTimeoutError => {
            format!(
                "cannot reach the Docker engine at {}: {}; start the engine, or check \
                 DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)",
                engine_location(),
                error_chain(e)
            )
        }
        other => other.to_string(),
    }
}

pub(crate) fn not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn endpoint(vars: &[(&str, &str)]) -> Result<Endpoint> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Endpoint::from_env(&|k| map.get(k).cloned())
    }

    #[test]
    fn docker_host_is_read_as_the_docker_cli_reads_it() {
        assert_eq!(
            endpoint(&[]).unwrap(),
            Endpoint::Unix("unix:///var/run/docker.sock".into())
        );
        assert_eq!(endpoint(&[]).unwrap().remote_host(), None);
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")]).unwrap(),
            Endpoint::Unix("unix:///run/user/1000/docker.sock".into())
        );
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "tcp://build.example.com:2375")]).unwrap(),
            Endpoint::Tcp {
                host: "build.example.com".into(),
                port: 2375
            }
        );
        // DOCKER_TLS_VERIFY set and non-empty: TLS, certificates from DOCKER_CERT_PATH
        assert_eq!(
            endpoint(&[
                ("DOCKER_HOST", "tcp://10.0.0.5:2376"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("DOCKER_CERT_PATH", "/etc/docker-certs"),
            ])
            .unwrap(),
            Endpoint::Tls {
                host: "10.0.0.5".into(),
                port: 2376,
                cert_path: "/etc/docker-certs".into()
            }
        );
        // an empty DOCKER_TLS_VERIFY is unset (as for the CLI); default cert path ~/.docker
        assert!(matches!(
            endpoint(&[("DOCKER_HOST", "tcp://h:2375"), ("DOCKER_TLS_VERIFY", "")]).unwrap(),
            Endpoint::Tcp { .. }
        ));
        assert_eq!(
            endpoint(&[
                ("DOCKER_HOST", "tcp://h"),
                ("DOCKER_TLS_VERIFY", "1"),
                ("HOME", "/home/u")
            ])
            .unwrap(),
            Endpoint::Tls {
                host: "h".into(),
                port: 2376,
                cert_path: "/home/u/.docker".into()
            }
        );
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "tcp://[2001:db8::1]:2375")]).unwrap(),
            Endpoint::Tcp {
                host: "2001:db8::1".into(),
                port: 2375
            }
        );
        let ssh = endpoint(&[("DOCKER_HOST", "ssh://deploy@bench-1.example.com:2222")]).unwrap();
        assert_eq!(ssh.remote_host(), Some("bench-1.example.com"));
        assert_eq!(
            endpoint(&[("DOCKER_HOST", "ssh://bench-2")])
                .unwrap()
                .remote_host(),
            Some("bench-2")
        );
        for bad in ["ftp://x", "tcp://h:port", "tcp://", "ssh://", "unix://"] {
            let e = endpoint(&[("DOCKER_HOST", bad)]).unwrap_err().to_string();
            assert!(e.contains("DOCKER_HOST"), "{bad}: {e}");
        }
    }
}
