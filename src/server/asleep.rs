//! The page a reverse proxy in front of the benches (Traefik) shows for a bench that does not
//! answer: `GET /asleep` on serve's listener, asked by Traefik's `errors` middleware with the
//! visitor's `Host` (see examples/traefik/asleep.yml). It names the bench at that host and its
//! state, and for a sleeping bench points at the dashboard's wake button (`--dashboard-url`)
//! or the command that wakes it. It never wakes anything itself: a page any visitor of a bench
//! host can load must not start benches (serve's own front door, `--proxy-listen`, does).

use super::hosts::{request_host, Hosts};
use super::Metrics;
use crate::app::sleep;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use std::sync::Arc;

/// What the page reads.
pub struct AsleepPage {
    pub hosts: Arc<Hosts>,
    /// Where people open the dashboard (`--dashboard-url`, no trailing `/`; `None`: the page
    /// names the command).
    pub dashboard_url: Option<String>,
    pub metrics: Arc<Metrics>,
}

#[derive(serde::Deserialize)]
pub struct Asked {
    /// The address the visitor asked for (Traefik's `{url}`): linked back to once awake.
    url: Option<String>,
}

/// The route, unauthenticated: it tells a visitor of a bench host only what the host already
/// says (which issue) and whether its bench sleeps.
pub fn routes(p: Arc<AsleepPage>) -> axum::Router {
    axum::Router::new()
        .route(
            "/asleep",
            axum::routing::get(
                |State(p): State<Arc<AsleepPage>>,
                 headers: HeaderMap,
                 uri: Uri,
                 Query(asked): Query<Asked>| async move {
                    answer(&p, &headers, &uri, asked).await
                },
            ),
        )
        .with_state(p)
}

/// What the bench at the host is doing, as the page tells it.
#[derive(Debug, PartialEq)]
enum Seen {
    NoBench,
    /// It runs: the proxy has not routed to it again yet.
    Starting(String),
    Asleep(sleep::Asleep),
    /// Stopped without a sleep marker (it crashed, or was stopped by hand).
    Stopped(String),
}

impl Seen {
    fn label(&self) -> &'static str {
        match self {
            Seen::NoBench => "no_bench",
            Seen::Starting(_) => "starting",
            Seen::Asleep(_) => "asleep",
            Seen::Stopped(_) => "stopped",
        }
    }
}

async fn answer(p: &AsleepPage, headers: &HeaderMap, uri: &Uri, asked: Asked) -> Response {
    let host = request_host(headers, uri);
    let seen = match p.hosts.route(&host, false).await {
        None => Seen::NoBench,
        Some(r) if r.target.is_some() => Seen::Starting(r.issue),
        Some(r) => match sleep::of(p.hosts.engine(), &r.issue).await {
            Ok(Some(a)) => Seen::Asleep(a),
            _ => Seen::Stopped(r.issue),
        },
    };
    p.metrics
        .inc("benchctl_asleep_pages_total", &[("state", seen.label())]);
    // a link back only to the host asked for: the page is no redirector for other sites
    let back = asked.url.filter(|u| {
        (u.starts_with("http://") || u.starts_with("https://"))
            && !crate::naming::url_has_userinfo(u)
            && crate::naming::url_host(u).eq_ignore_ascii_case(&host)
    });
    let status = match seen {
        Seen::NoBench => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let page = render(
        &host,
        &seen,
        p.dashboard_url.as_deref(),
        back.as_deref(),
        crate::clock::now_unix(),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::RETRY_AFTER, "10"),
        ],
        page.into_string(),
    )
        .into_response()
}

/// The dashboard's page of `issue` (at its wake button: `#wake`).
fn bench_page(dashboard: &str, issue: &str, at_wake: bool) -> String {
    let anchor = if at_wake { "#wake" } else { "" };
    format!("{}/bench/{issue}{anchor}", dashboard.trim_end_matches('/'))
}

fn render(
    host: &str,
    seen: &Seen,
    dashboard: Option<&str>,
    back: Option<&str>,
    now: u64,
) -> Markup {
    let (title, refresh) = match seen {
        Seen::NoBench => (format!("No bench at {host}"), None),
        Seen::Starting(i) => (format!("{i}'s bench is starting"), Some("3")),
        // reloads now and then: once someone wakes it, the tab shows the bench again
        Seen::Asleep(a) => (format!("{}'s bench is asleep", a.issue), Some("15")),
        Seen::Stopped(i) => (format!("{i}'s bench is stopped"), None),
    };
    let issue = match seen {
        Seen::NoBench => None,
        Seen::Starting(i) | Seen::Stopped(i) => Some(i.as_str()),
        Seen::Asleep(a) => Some(a.issue.as_str()),
    };
    html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(r) = refresh { meta http-equiv="refresh" content=(r); }
                title { (title) }
            }
            body style="font-family: sans-serif; margin: 3em; max-width: 40em" {
                h1 { (title) }
                @match seen {
                    Seen::NoBench => p { "No issue's bench has this address. It may have been torn down when its issue closed." },
                    Seen::Starting(_) => p { "It is running again; this page reloads until the proxy sends you to it." },
                    Seen::Asleep(a) => p {
                        "Nobody used it for a while"
                        @if a.reason == "cap" { " and another bench needed its room" }
                        @if a.reason == "by hand" { " (put to sleep by hand)" }
                        ", so it was stopped to free its memory "
                        (crate::server::dashboard::view::age(now.saturating_sub(a.since)))
                        " ago. Its data and address are kept: it answers again once woken, in a few seconds."
                    },
                    Seen::Stopped(_) => p { "It was not put to sleep by benchctl: it may have crashed. Its page on the dashboard shows its last output." },
                }
                @if let Some(i) = issue {
                    @if let Some(d) = dashboard {
                        @if matches!(seen, Seen::Asleep(_)) {
                            p { a href=(bench_page(d, i, true)) { "Wake it on the dashboard" } }
                        } @else {
                            p { a href=(bench_page(d, i, false)) { "Its page on the dashboard" } }
                        }
                    } @else if matches!(seen, Seen::Asleep(_)) {
                        p { "Wake it with " code { "benchctl wake " (i) } "." }
                    }
                }
                @if let Some(b) = back { p { "Then go back to " a href=(b) { (b) } "." } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asleep(reason: &str) -> Seen {
        Seen::Asleep(sleep::Asleep {
            issue: "PROJ-42".into(),
            since: 1_000,
            reason: reason.into(),
        })
    }

    #[test]
    fn a_sleeping_bench_points_at_the_dashboard_s_wake_button() {
        let page = render(
            "proj-42.bench.test",
            &asleep("idle"),
            Some("https://benches.example.com/"),
            Some("http://proj-42.bench.test/cart?id=1"),
            1_000 + 7_200,
        )
        .into_string();
        assert!(
            page.contains("<h1>PROJ-42's bench is asleep</h1>"),
            "{page}"
        );
        assert!(
            page.contains(r#"href="https://benches.example.com/bench/PROJ-42#wake""#),
            "{page}"
        );
        assert!(page.contains("2h ago"), "{page}");
        assert!(
            page.contains(r#"href="http://proj-42.bench.test/cart?id=1""#),
            "{page}"
        );
        assert!(page.contains(r#"http-equiv="refresh""#), "{page}");
    }

    #[test]
    fn without_a_dashboard_the_page_names_the_command() {
        let page = render("proj-42.bench.test", &asleep("cap"), None, None, 1_060).into_string();
        assert!(page.contains("benchctl wake PROJ-42"), "{page}");
        assert!(page.contains("another bench needed its room"), "{page}");
        assert!(!page.contains("dashboard"), "{page}");
    }

    #[test]
    fn an_unknown_host_and_a_crashed_bench_are_told_apart_from_a_sleeping_one() {
        let none =
            render("x.bench.test", &Seen::NoBench, Some("https://d/"), None, 0).into_string();
        assert!(none.contains("No bench at x.bench.test"), "{none}");
        assert!(!none.contains("refresh"), "{none}");
        let stopped = render(
            "proj-42.bench.test",
            &Seen::Stopped("PROJ-42".into()),
            Some("https://d"),
            None,
            0,
        )
        .into_string();
        assert!(
            stopped.contains("not put to sleep by benchctl"),
            "{stopped}"
        );
        assert!(
            stopped.contains(r#"href="https://d/bench/PROJ-42""#),
            "{stopped}"
        );
        assert!(!stopped.contains("Wake it"), "{stopped}");
    }
}
