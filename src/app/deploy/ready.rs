//! Readiness: the new bench counts as up when its health check passes or it answers HTTP, and
//! a published port must answer from outside too.

use crate::engine::{labels, Engine};
use std::time::{Duration, Instant};

/// Where readiness is probed: the published port on the host, or the container's own address
/// on its network (routed benches publish nothing) with the container port.
pub enum Probe {
    Published(String),
    Direct(u16),
}

/// Waits until the container is healthy (with a HEALTHCHECK) or answers HTTP (without one);
/// a published port must also accept connections. Returns the host port and the host the
/// engine placed it on (when it knows), or why it never became ready.
pub async fn wait_ready(
    engine: &Engine,
    id: &str,
    deploy_id: &str,
    probe: &Probe,
    health_path: &str,
    timeout: Duration,
) -> std::result::Result<(Option<u16>, Option<String>), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut last_problem: String;
    let mut note: Option<String> = None;
    // since when the engine has called it healthy while its published port does not answer
    let mut healthy_unreachable: Option<Instant> = None;
    loop {
        let info = engine
            .benches
            .inspect(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the container disappeared")?;
        note = info.reach_note.clone().or(note);
        if info.labels.get(labels::DEPLOY_ID).map(String::as_str) != Some(deploy_id) {
            // an engine that updates in place (swarm) went back to the previous version
            return Err(format!(
                "the new version failed and the engine went back to the previous one ({})",
                info.state
            ));
        }
        if !info.running || info.restarts > 0 || info.state == "restarting" {
            return Err(match info.exit_code {
                Some(code) if !info.running || info.restarts > 0 => {
                    format!("the container exited with code {code}")
                }
                _ => format!("the container is {}", info.state),
            });
        }
        let health = info.health.as_deref();
        let target = match (probe, health) {
            // not started yet (e.g. a swarm task being scheduled): nothing to probe
            (_, Some("starting")) if info.host_port.is_none() && info.ip.is_none() => None,
            (Probe::Published(host), _) => {
                let port = info.host_port.ok_or("the engine published no host port")?;
                let host = info.host.clone().unwrap_or_else(|| host.clone());
                let shown = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                Some((Some(port), format!("{shown}:{port}")))
            }
            (Probe::Direct(port), _) => match (&info.ip, health) {
                (Some(ip), _) => Some((None, format!("{ip}:{port}"))),
                // a swarm task's address is not reachable from here: its health check tells
                (None, Some(_)) => Some((None, String::new())),
                (None, None) => {
                    return Err("it has no address on its network that benchctl can reach, \
                                and no HEALTHCHECK"
                        .into())
                }
            },
        };
        let placed = info.host.clone();
        match (health, target) {
            (Some("unhealthy"), _) => return Err("its HEALTHCHECK reports unhealthy".into()),
            (_, None) => last_problem = info.state.clone(),
            (Some("healthy"), Some((host_port, address))) => {
                if matches!(probe, Probe::Direct(_)) {
                    return Ok((host_port, placed));
                }
                // healthy inside; the published port must answer from outside too
                match http
                    .get(format!("http://{address}{health_path}"))
                    .send()
                    .await
                {
                    Ok(_) => return Ok((host_port, placed)),
                    Err(e) => {
                        last_problem = format!(
                            "it is healthy, but its published port does not answer at \
                             {address} ({e})"
                        );
                        let since = *healthy_unreachable.get_or_insert_with(Instant::now);
                        if note.is_some() && since.elapsed() > Duration::from_secs(5) {
                            return Err(format!("{last_problem}; {}", note.unwrap_or_default()));
                        }
                    }
                }
            }
            (Some(_), _) => last_problem = "its HEALTHCHECK has not passed yet".into(),
            (None, Some((host_port, address))) => {
                let url = format!("http://{address}{health_path}");
                match http.get(&url).send().await {
                    // any answer shows the server is up; a health path must say it is well
                    Ok(r) if health_path == "/" && r.status().as_u16() < 500 => {
                        return Ok((host_port, placed))
                    }
                    Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                        return Ok((host_port, placed))
                    }
                    Ok(r) => {
                        last_problem = format!("{health_path} answers {} at {address}", r.status())
                    }
                    Err(e) => last_problem = format!("no HTTP answer at {address} ({e})"),
                }
            }
        }
        if Instant::now() >= deadline {
            let hint = note.map(|n| format!("; {n}")).unwrap_or_default();
            return Err(format!(
                "not ready within {} s: {last_problem}{hint}; raise --ready-timeout if it needs \
                 longer",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
