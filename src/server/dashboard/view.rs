//! The dashboard's pages as HTML, rendered with maud (every value is escaped by construction:
//! a branch named `<script>` or a log line with markup shows as text). Readable without
//! JavaScript, one column on a phone, refreshing itself while jobs run.

use maud::{html, Markup, DOCTYPE};

/// One bench (or an issue whose last deploy left no bench).
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub issue: String,
    /// The issue in the Tracker's web interface.
    pub tracker_url: Option<String>,
    pub branch: String,
    pub commit: String,
    /// `running (healthy)`, `exited`, ... (none: no bench).
    pub state: Option<String>,
    pub url: Option<String>,
    pub age_seconds: Option<u64>,
    /// Seconds until serve's clean-up removes the bench (`--ttl`), when it has one.
    pub ttl_left: Option<u64>,
    /// The issue's summary, when the Tracker gave it.
    pub summary: Option<String>,
    /// The last deploy: its result, when (unix seconds), and its message.
    pub last: Option<(String, u64, String)>,
}

/// The job queue: (issue, kind) of running and of waiting jobs.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    pub running: Vec<(String, String)>,
    pub waiting: Vec<(String, String)>,
}

/// One bench's page.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    pub row: Row,
    /// (service, state, health) of a multi-service bench.
    pub services: Vec<(String, String, String)>,
    /// The bench's last output lines (redacted).
    pub logs: Vec<String>,
    /// Earlier deploys, newest first: (result, when, commit).
    pub earlier: Vec<(String, u64, String)>,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;color:#222}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;\
border-bottom:1px solid #ddd;vertical-align:top}.failed{color:#b00020}.ok{color:#0a7a2f}\
pre{background:#f4f4f4;padding:.5rem;overflow-x:auto;white-space:pre-wrap}\
@media (max-width:700px){table,thead,tbody,tr,th,td{display:block}thead{display:none}\
tr{border:1px solid #ddd;margin-bottom:.6rem}td{border:none}td::before{content:attr(data-label)\": \";font-weight:600}}";

fn page(title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh {
                    meta http-equiv="refresh" content=(s);
                }
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// `12s`, `5m`, `3h`, `2d`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn last_cell(row: &Row, now: u64) -> Markup {
    html! {
        @if let Some((result, at, message)) = &row.last {
            span class=(if result == "failed" { "failed" } else { "ok" }) { (result) }
            " " (age(now.saturating_sub(*at))) " ago"
            @if result == "failed" && !message.is_empty() {
                pre class="error" { (message) }
            }
        } @else { "-" }
    }
}

/// The list of benches and the job queue. It refreshes every 5 s while jobs run or wait.
pub fn index(rows: &[Row], jobs: &Jobs, now: u64) -> Markup {
    let busy = !jobs.running.is_empty() || !jobs.waiting.is_empty();
    page(
        "benchctl benches",
        busy.then_some(5),
        html! {
            h1 { "Benches" }
            p { (rows.len()) " bench(es); jobs: " (jobs.running.len()) " running, "
                (jobs.waiting.len()) " waiting" }
            @if busy {
                ul class="jobs" {
                    @for (issue, kind) in &jobs.running { li { "running: " (kind) " of " (issue) } }
                    @for (issue, kind) in &jobs.waiting { li { "waiting: " (kind) " of " (issue) } }
                }
            }
            table {
                thead { tr { th { "issue" } th { "branch" } th { "commit" } th { "state" }
                    th { "address" } th { "age" } th { "TTL left" } th { "last deploy" } } }
                tbody {
                    @for r in rows {
                        tr id=(format!("bench-{}", r.issue)) {
                            td data-label="issue" {
                                a href=(format!("bench/{}", r.issue)) { (r.issue) }
                                @if let Some(t) = &r.tracker_url { " (" a href=(t) { "Tracker" } ")" }
                                @if let Some(s) = &r.summary { br; small { (s) } }
                            }
                            td data-label="branch" { code { (r.branch) } }
                            td data-label="commit" { code { (crate::naming::short_commit(&r.commit)) } }
                            td data-label="state" {
                                (r.state.as_deref().unwrap_or("no bench"))
                            }
                            td data-label="address" {
                                @if let Some(u) = &r.url { a href=(u) { (u) } } @else { "-" }
                            }
                            td data-label="age" { (r.age_seconds.map(age).unwrap_or("-".into())) }
                            td data-label="TTL left" { (r.ttl_left.map(age).unwrap_or("-".into())) }
                            td data-label="last deploy" { (last_cell(r, now)) }
                        }
                    }
                }
            }
        },
    )
}

/// One bench: its state, services, last deploy and last output lines.
pub fn bench(d: &Detail, now: u64) -> Markup {
    let r = &d.row;
    page(
        &format!("{} - benchctl", r.issue),
        None,
        html! {
            p { a href="../" { "all benches" } }
            h1 { (r.issue) @if let Some(s) = &r.summary { ": " (s) } }
            ul {
                li { "branch: " code { (r.branch) } }
                li { "commit: " code { (r.commit) } }
                li { "state: " (r.state.as_deref().unwrap_or("no bench"))
                    @if r.state.as_deref() == Some("sleeping") {
                        form id="wake" method="post" action={ (r.issue) "/wake" } style="display: inline" {
                            " " button type="submit" { "Wake it" }
                        }
                    }
                }
                li { "address: " @if let Some(u) = &r.url { a href=(u) { (u) } } @else { "-" } }
                @if let Some(t) = &r.tracker_url { li { a href=(t) { "the issue in the Tracker" } } }
                li { "TTL left: " (r.ttl_left.map(age).unwrap_or("-".into())) }
            li { "last deploy: " (last_cell(r, now)) }
            }
            @if !d.services.is_empty() {
                h2 { "Services" }
                table {
                    thead { tr { th { "service" } th { "state" } th { "health" } } }
                    tbody { @for (s, st, h) in &d.services {
                        tr { td data-label="service" { (s) } td data-label="state" { (st) }
                             td data-label="health" { (h) } } } }
                }
            }
            @if !d.earlier.is_empty() {
            h2 { "Earlier deploys" }
            ul { @for (result, at, commit) in &d.earlier {
                li { span class=(if result == "failed" { "failed" } else { "ok" }) { (result) }
                     " " code { (crate::naming::short_commit(commit)) } " "
                     (age(now.saturating_sub(*at))) " ago" } } }
        }
        h2 { "Last output" }
            pre class="logs" { @for l in &d.logs { (l) "\n" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_and_log_lines_show_as_text() {
        let row = Row {
            issue: "X-1".into(),
            branch: "feature/X-1-<script>alert(1)</script>".into(),
            commit: "abc".into(),
            url: Some("http://h/\"><img src=x onerror=alert(1)>".into()),
            last: Some(("failed".into(), 0, "error: <b>boom</b>".into())),
            ..Default::default()
        };
        let html = index(std::slice::from_ref(&row), &Jobs::default(), 60).into_string();
        assert!(
            !html.contains("<script>alert") && !html.contains("<img"),
            "{html}"
        );
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("error: &lt;b&gt;boom&lt;/b&gt;"), "{html}");
        assert!(!html.contains("http-equiv"), "no jobs: no refresh");
        let d = Detail {
            row,
            logs: vec!["</pre><script>x()</script>".into()],
            ..Default::default()
        };
        let html = bench(&d, 60).into_string();
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;x()"), "{html}");
        let busy = Jobs {
            running: vec![("X-1".into(), "deploy".into())],
            ..Default::default()
        };
        assert!(index(&[], &busy, 0)
            .into_string()
            .contains("http-equiv=\"refresh\""));
    }
}
