//! The one printer: a command returns its result as a value ([`Report`]); here it becomes the
//! JSON result (`--json`) or lines for people, with its exit code. Errors too. Everything that
//! leaves is redacted.

use crate::app::deploy::{Action, DeployOutcome};
use crate::app::inspect::{BenchRecord, Status};
use crate::app::link::LinkOutcome;
use crate::app::teardown::TeardownOutcome;
use crate::error::exit;
use crate::naming::short_commit;
use crate::output::OutputMode;
use crate::secret::redact;
use crate::Error;
use serde_json::{json, Value};

mod disk;
mod power;
mod status;
pub use disk::Disk;
pub use power::{Slept, Woke};

/// A line for people: on stdout (the result) or stderr (what went wrong).
pub enum Line {
    Out(String),
    Err(String),
}

/// A command's result.
pub trait Report {
    /// The `--json` result.
    fn json(&self) -> Value;
    /// The lines people read.
    fn human(&self) -> Vec<Line>;
    /// The exit code it means.
    fn code(&self) -> i32 {
        exit::OK
    }
}

/// What a command leaves to print.
pub enum Output {
    Report(Box<dyn Report>),
    /// The command wrote its output itself (a log stream, a completion script) or has none.
    Written,
}

impl<R: Report + 'static> From<R> for Output {
    fn from(r: R) -> Output {
        Output::Report(Box::new(r))
    }
}

/// Prints `output` as `mode` says; returns the exit code.
pub fn print(mode: OutputMode, output: &Output) -> i32 {
    let Output::Report(report) = output else {
        return exit::OK;
    };
    if mode == OutputMode::Json {
        print_json(&report.json());
    } else {
        for line in report.human() {
            match line {
                Line::Out(l) => println!("{}", redact(&l)),
                Line::Err(l) => eprintln!("{}", redact(&l)),
            }
        }
    }
    report.code()
}

fn print_json(value: &Value) {
    println!(
        "{}",
        redact(&serde_json::to_string_pretty(value).expect("serializable"))
    );
}

/// Prints an error as `mode` says.
pub fn error(e: &Error, mode: OutputMode) {
    let msg = redact(&e.to_string());
    if mode == OutputMode::Json {
        print_json(&json!({ "error": msg, "exit_code": e.exit_code() }));
    } else {
        eprintln!("error: {msg}");
    }
}

fn to_json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("serializable")
}

/// A duration in seconds as people read it (`90s`, `5m`, `3h`, `2d`).
pub fn age(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 7200 => format!("{}m", s / 60),
        Some(s) if s < 172_800 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86_400),
    }
}

/// Rows under a header, columns as wide as their widest cell.
pub fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<Line> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text = cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        Line::Out(text.trim_end().to_string())
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    out
}

/// `--skip-no-issue`: a branch without an issue key was left alone.
pub struct SkippedNoIssue {
    pub branch: String,
}

impl Report for SkippedNoIssue {
    fn json(&self) -> Value {
        json!({ "skipped": true, "branch": self.branch, "reason": "no issue key" })
    }
    fn human(&self) -> Vec<Line> {
        vec![Line::Out(format!(
            "branch `{}` carries no issue key; nothing to do (--skip-no-issue)",
            self.branch
        ))]
    }
}

impl Report for DeployOutcome {
    fn json(&self) -> Value {
        let mut v = to_json(&self.bench);
        v["action"] = to_json(&self.action);
        if let Some(e) = self.link.error() {
            v["link_error"] = Value::String(e.to_string());
        }
        if let Some(c) = &self.code_host {
            v["code_host"] = to_json(c);
        }
        v
    }
    fn human(&self) -> Vec<Line> {
        let b = &self.bench;
        let what = match self.action {
            Action::Deployed => "is up at",
            Action::Unchanged => "is unchanged at",
            Action::Skipped => "keeps its newer bench at",
        };
        let mut out = vec![Line::Out(format!(
            "{} {what} {} (branch {}, commit {})",
            b.issue,
            b.url.clone().unwrap_or_default(),
            b.branch,
            short_commit(&b.commit)
        ))];
        match (self.link.skipped(), self.action) {
            (Some(why), Action::Skipped) => out.push(Line::Out(why.to_string())),
            (Some(why), _) => out.push(Line::Out(format!("not linked in the Tracker: {why}"))),
            _ => {}
        }
        if let Some(e) = self.link.error() {
            out.push(Line::Err(format!(
                "error: the bench is up but not linked: {e}\nafter fixing it, deploy again \
                 (nothing is rebuilt needlessly) or set the field by hand"
            )));
        }
        out
    }
    fn code(&self) -> i32 {
        if self.link.error().is_some() {
            exit::NOT_LINKED
        } else {
            exit::OK
        }
    }
}

/// A bench's state as `list` and `status` show it: `sleeping for 2h` when it sleeps.
pub(crate) fn state_of(r: &BenchRecord) -> String {
    match r.sleeping_since {
        Some(since) => format!(
            "sleeping for {}",
            age(Some(crate::clock::now_unix().saturating_sub(since)))
        ),
        None => r.state.clone().unwrap_or_default(),
    }
}

/// `list`: every bench (with `totals`, the JSON is `{benches, totals}`).
pub struct Benches {
    pub rows: Vec<BenchRecord>,
    pub totals: bool,
}

impl Report for Benches {
    fn json(&self) -> Value {
        match self.totals {
            false => to_json(&self.rows),
            true => json!({
                "benches": to_json(&self.rows),
                "totals": to_json(&crate::app::inspect::Totals::of(&self.rows)),
            }),
        }
    }
    fn human(&self) -> Vec<Line> {
        if self.rows.is_empty() {
            return vec![Line::Out("no benches".into())];
        }
        let rows: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.issue.clone(),
                    r.branch.clone(),
                    short_commit(&r.commit).to_string(),
                    r.url.clone().unwrap_or_else(|| "-".into()),
                    match (r.pinned, r.pinned_until) {
                        (true, Some(u)) => format!(
                            "{} (pinned until {})",
                            state_of(r),
                            &crate::clock::utc(u)[..10]
                        ),
                        (true, None) => format!("{} (pinned)", state_of(r)),
                        _ => state_of(r),
                    },
                    age(r.age_seconds),
                ]
            })
            .collect();
        let mut lines = table(
            ["ISSUE", "BRANCH", "COMMIT", "ADDRESS", "STATE", "AGE"],
            &rows,
        );
        let t = crate::app::inspect::Totals::of(&self.rows);
        let mib = |g: &crate::app::inspect::Group| g.memory_bytes >> 20;
        let mut sum = format!(
            "{} running ({} MiB reserved), {} sleeping ({} MiB freed)",
            t.running.count,
            mib(&t.running),
            t.sleeping.count,
            mib(&t.sleeping)
        );
        if t.other.count > 0 {
            sum.push_str(&format!(", {} stopped or failing", t.other.count));
        }
        if t.pinned.count > 0 {
            sum.push_str(&format!(", {} pinned", t.pinned.count));
        }
        lines.push(Line::Out(sum));
        lines
    }
}

/// A failed deploy with what its code host was told: the error as [`error`] prints it, with
/// `code_host` beside it in `--json`, and the error's exit code.
pub struct Failed {
    pub error: Error,
    pub code_host: crate::feedback::Report,
}

impl Report for Failed {
    fn json(&self) -> Value {
        json!({
            "error": redact(&self.error.to_string()),
            "exit_code": self.error.exit_code(),
            "code_host": to_json(&self.code_host),
        })
    }
    fn human(&self) -> Vec<Line> {
        vec![Line::Err(format!(
            "error: {}",
            redact(&self.error.to_string())
        ))]
    }
    fn code(&self) -> i32 {
        self.error.exit_code()
    }
}

/// `pin` / `unpin`: the issue's pin now.
pub struct Pinned {
    pub issue: String,
    /// The pin set (`pin`), or none (`unpin`).
    pub pin: Option<crate::app::pin::Pin>,
    /// `unpin`: whether there was a pin to remove.
    pub was_pinned: bool,
}

impl Report for Pinned {
    fn json(&self) -> Value {
        serde_json::json!({
            "issue": self.issue,
            "pinned": self.pin.is_some(),
            "until": self.pin.as_ref().and_then(|p| p.until),
        })
    }
    fn human(&self) -> Vec<Line> {
        vec![Line::Out(match (&self.pin, self.was_pinned) {
            (Some(p), _) => format!(
                "{} is pinned{}: its bench does not expire",
                self.issue,
                p.until
                    .map(|u| format!(" until {}", crate::clock::utc(u)))
                    .unwrap_or_default()
            ),
            (None, true) => format!("{} is no longer pinned", self.issue),
            (None, false) => format!("{} was not pinned", self.issue),
        })]
    }
}

/// `teardown`: what was removed, and the field as the command named it.
pub struct Teardown {
    pub outcome: TeardownOutcome,
    pub field: String,
}

impl Report for Teardown {
    fn json(&self) -> Value {
        to_json(&self.outcome)
    }
    fn human(&self) -> Vec<Line> {
        let (o, issue) = (&self.outcome, &self.outcome.issue);
        let mut out = vec![];
        if o.removed_containers.is_empty() {
            out.push(Line::Out(format!(
                "{issue} has no bench; nothing to remove"
            )));
        } else {
            out.push(Line::Out(format!(
                "{issue}: removed {} container(s) and {} image(s)",
                o.removed_containers.len(),
                o.removed_images
            )));
        }
        if o.link_cleared {
            out.push(Line::Out(format!(
                "{issue}: field `{}` cleared",
                self.field
            )));
        }
        if let Some(e) = &o.link_error {
            out.push(Line::Err(format!("error: {e}")));
        }
        out
    }
    fn code(&self) -> i32 {
        if self.outcome.link_error.is_some() {
            exit::FAILURE
        } else {
            exit::OK
        }
    }
}

impl Report for LinkOutcome {
    fn json(&self) -> Value {
        json!({
            "issue": self.issue, "field": self.field, "url": self.url,
            "linked": self.error.is_none(), "link_error": self.error,
        })
    }
    fn human(&self) -> Vec<Line> {
        match (&self.url, &self.error) {
            (Some(url), _) => vec![Line::Out(format!(
                "{}: field `{}` = {url}",
                self.issue, self.field
            ))],
            (None, Some(e)) => vec![Line::Err(format!("error: {e}"))],
            (None, None) => vec![],
        }
    }
    fn code(&self) -> i32 {
        if self.error.is_some() {
            exit::NOT_LINKED
        } else {
            exit::OK
        }
    }
}

/// `gc`: what was (or, with `--dry-run`, would be) removed.
pub struct Gc {
    pub actions: Vec<crate::app::gc::GcAction>,
    pub dry_run: bool,
    /// What benches hold on the engine's disk after it (one line of people's output).
    pub disk: Option<crate::app::disk::DiskReport>,
}

impl Report for Gc {
    fn json(&self) -> Value {
        to_json(&self.actions)
    }
    fn human(&self) -> Vec<Line> {
        let verb = if self.dry_run { "would " } else { "" };
        let mut lines: Vec<Line> = self
            .actions
            .iter()
            .map(|a| Line::Out(format!("{verb}{} {}: {}", a.action, a.target, a.reason)))
            .collect();
        if lines.is_empty() {
            lines.push(Line::Out("nothing to clean up".into()));
        }
        if let Some(d) = &self.disk {
            lines.push(Line::Out(format!(
                "{} (`benchctl disk` lists each bench)",
                disk::summary(d)
            )));
        }
        lines
    }
}

/// `egress`: whether the benches' egress is closed, and what was done to make it so.
pub struct Egress {
    pub closed: bool,
    pub done: Vec<String>,
}

impl Report for Egress {
    fn json(&self) -> Value {
        json!({ "egress": if self.closed { "closed" } else { "open" }, "done": self.done })
    }
    fn human(&self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.done.iter().map(|d| Line::Out(d.clone())).collect();
        lines.push(Line::Out(if self.closed {
            "egress closed: benches reach no listener of this host and no link-local address; \
             builds no link-local address"
                .into()
        } else {
            "egress open: benches and builds reach what this host's network reaches".into()
        }));
        lines
    }
}

/// `config`: each setting, its value and where it came from (secrets already masked).
pub struct Settings(pub Vec<crate::settings::Row>);

impl Report for Settings {
    fn json(&self) -> Value {
        to_json(&self.0)
    }
    fn human(&self) -> Vec<Line> {
        let rows = &self.0;
        let w0 = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
        let w1 = rows
            .iter()
            .map(|r| r.value.chars().count())
            .max()
            .unwrap_or(0)
            .min(60);
        rows.iter()
            .map(|r| {
                let line = format!("{:<w0$}  {:<w1$}  {}", r.key, r.value, r.origin);
                Line::Out(line.trim_end().to_string())
            })
            .collect()
    }
}

/// `templates`: the templates there are, and the one a branch's deploy would use.
pub struct Templates {
    pub list: Vec<crate::build::templates::Listed>,
    /// The branch asked about, its template (if any) and its Dockerfile path.
    pub branch: Option<(String, Option<crate::build::templates::Chosen>, String)>,
}

impl Report for Templates {
    fn json(&self) -> Value {
        json!({
            "templates": self.list,
            "branch": self.branch.as_ref().map(|b| &b.0),
            "chosen": self.branch.as_ref().and_then(|b| b.1.as_ref()),
        })
    }
    fn human(&self) -> Vec<Line> {
        let w = self
            .list
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = vec![format!(
            "{:<w$}  {:<34}  {:<40}  SOURCE",
            "NAME", "CHOSEN BY", "FROM"
        )];
        for t in &self.list {
            let by = if t.chosen_by.is_empty() {
                "--template only".to_string()
            } else {
                t.chosen_by.join(" or ")
            };
            out.push(format!(
                "{:<w$}  {:<34}  {:<40}  {}",
                t.name,
                by,
                t.base_images.join(", "),
                t.source
            ));
        }
        match &self.branch {
            Some((branch, Some(t), _)) => out.push(format!(
                "\nbranch `{branch}` is built with template `{}`: {}",
                t.name, t.reason
            )),
            Some((branch, None, dockerfile)) => out.push(format!(
                "\nbranch `{branch}` is built with its own `{dockerfile}`"
            )),
            None => {}
        }
        out.into_iter().map(Line::Out).collect()
    }
}

impl Report for crate::tracker::InitOutcome {
    fn json(&self) -> Value {
        to_json(self)
    }
    fn human(&self) -> Vec<Line> {
        let mut out = vec![
            format!(
                "field: {} ({})",
                self.field_key,
                if self.field_created {
                    "created"
                } else {
                    "already there"
                }
            ),
            format!(
                "  use it with: export BENCHCTL_BENCH_FIELD='{}'",
                self.field_key
            ),
        ];
        match (&self.trigger_state[..], &self.trigger) {
            ("created", _) => out.push(format!("trigger: \"{}\" created", self.trigger_name)),
            ("exists", _) => out.push(format!("trigger: \"{}\" already there", self.trigger_name)),
            (_, Some(body)) => {
                out.push(format!(
                    "trigger: not created (pass --apply to create it); it would be, with the \
                     secret of {} in place of <secret>:",
                    crate::env::TRACKER_HOOK_SECRET
                ));
                out.push(serde_json::to_string_pretty(body).expect("serializable"));
            }
            _ => out.push(
                "trigger: pass --hook-url <https://.../hooks/tracker> to create or print it".into(),
            ),
        }
        out.into_iter().map(Line::Out).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_count() {
        assert_eq!(age(None), "-");
        assert_eq!(age(Some(59)), "59s");
        assert_eq!(age(Some(600)), "10m");
        assert_eq!(age(Some(3 * 3600)), "3h");
        assert_eq!(age(Some(3 * 86_400)), "3d");
    }

    #[test]
    fn tables_align_their_columns() {
        let lines = table(["A", "LONGER"], &[["xyz".into(), "1".into()]]);
        let text: Vec<String> = lines
            .into_iter()
            .map(|l| match l {
                Line::Out(s) | Line::Err(s) => s,
            })
            .collect();
        assert_eq!(text, ["A    LONGER", "xyz  1"]);
    }
}
