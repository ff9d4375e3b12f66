//! Routing a bench through a reverse proxy (Traefik) instead of publishing its port: the
//! labels that make the proxy send the bench's host name to it.

use std::collections::HashMap;
use std::time::Duration;

/// Traefik routing: the bench joins `network` and carries the router labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Router {
    pub network: String,
    pub entrypoint: Option<String>,
    pub cert_resolver: Option<String>,
    /// How long a redeploy keeps the old container serving after the new one answers. Traefik
    /// learns of containers from the engine's events but applies a provider's changes at most
    /// every `providersThrottleDuration` (2 s by default): the new container's start and the
    /// old one's end, close together, leave the old (gone) address in its pool for that long,
    /// and requests sent there wait for Traefik's dial timeout (30 s) and fail. Waiting first
    /// lets Traefik route to both, then drop the old one as soon as it ends.
    pub drain: Duration,
}

impl Router {
    /// Traefik's labels for a bench answering on `port` at `host`, read by Traefik's
    /// `provider` (`docker` for containers, `swarm` for services: the backend's
    /// [`crate::engine::Stacks::kind`]). The network key is the provider's own: Traefik v3's
    /// swarm provider skips a service that has both `traefik.docker.*` and `traefik.swarm.*`
    /// labels (Traefik v2, no longer maintained, read `traefik.docker.network` in swarm mode).
    pub fn labels(
        &self,
        issue: &str,
        host: &str,
        port: u16,
        provider: &str,
    ) -> HashMap<String, String> {
        let name = format!("benchctl-{}", crate::naming::slug(issue, 60));
        let mut l = HashMap::new();
        l.insert("traefik.enable".to_string(), "true".to_string());
        l.insert(format!("traefik.{provider}.network"), self.network.clone());
        l.insert(
            format!("traefik.http.routers.{name}.rule"),
            format!("Host(`{host}`)"),
        );
        l.insert(format!("traefik.http.routers.{name}.service"), name.clone());
        if let Some(e) = &self.entrypoint {
            l.insert(
                format!("traefik.http.routers.{name}.entrypoints"),
                e.clone(),
            );
        }
        if let Some(r) = &self.cert_resolver {
            l.insert(
                format!("traefik.http.routers.{name}.tls"),
                "true".to_string(),
            );
            l.insert(
                format!("traefik.http.routers.{name}.tls.certresolver"),
                r.clone(),
            );
        }
        l.insert(
            format!("traefik.http.services.{name}.loadbalancer.server.port"),
            port.to_string(),
        );
        l
    }
}
