//! What the orchestration reports, and how it is drawn.
//!
//! The orchestration only sends [`Event`]s to a [`Reporter`]; it never prints. [`OutputMode`]
//! decides, in one pure place, whether the user gets progress bars (a terminal), plain lines
//! (CI or piped), or only the JSON result (`--json`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A phase starts (one line in plain mode, the spinner's message on a terminal).
    Step(String),
    /// Something the user should know that is not a phase.
    Info(String),
    Warn(String),
    FetchProgress {
        received_objects: usize,
        total_objects: usize,
        received_bytes: usize,
    },
    ContextProgress {
        bytes: u64,
    },
    /// A line of the engine's build output.
    BuildOutput(String),
    /// The phase finished.
    Done(String),
    /// The deploy starts work on this commit (it is no no-op): observers (the code hosts)
    /// hear of it; printers show nothing.
    Deploying {
        commit: String,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event);
}

pub type SharedReporter = Arc<dyn Reporter>;

/// How output is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// indicatif progress on stderr.
    Terminal,
    /// Plain lines on stderr.
    Plain,
    /// Nothing but the JSON result on stdout.
    Json,
}

impl OutputMode {
    /// The one place that decides the output mode.
    pub fn decide(json: bool, ci: bool, stderr_is_terminal: bool) -> Self {
        if json {
            OutputMode::Json
        } else if ci || !stderr_is_terminal {
            OutputMode::Plain
        } else {
            OutputMode::Terminal
        }
    }

    pub fn from_process(json: bool) -> Self {
        use std::io::IsTerminal;
        Self::decide(
            json,
            crate::env::var(crate::env::CI).is_some(),
            std::io::stderr().is_terminal(),
        )
    }

    pub fn reporter(self) -> SharedReporter {
        match self {
            OutputMode::Json => Arc::new(Silent),
            OutputMode::Plain => Arc::new(PlainReporter),
            OutputMode::Terminal => Arc::new(TerminalReporter::new()),
        }
    }
}

/// Discards everything (for `--json`, and a convenience for tests).
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: Event) {}
}

/// Records events (for tests of the library).
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn report(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// Plain lines on stderr: one per phase, build output indented.
pub struct PlainReporter;

impl Reporter for PlainReporter {
    fn report(&self, event: Event) {
        let line = match event {
            Event::Step(s) => format!("==> {s}"),
            Event::Info(s) => format!("    {s}"),
            Event::Warn(s) => format!("warning: {s}"),
            Event::Done(s) => format!("    {s}"),
            Event::BuildOutput(s) => format!("    | {s}"),
            Event::FetchProgress { .. }
            | Event::ContextProgress { .. }
            | Event::Deploying { .. } => return,
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", crate::secret::redact(&line));
    }
}

/// A spinner with the current phase, byte and object counters, build output above it.
pub struct TerminalReporter {
    bar: ProgressBar,
}

/// The spinner's template: colored unless `NO_COLOR` is set (https://no-color.org).
pub fn spinner_template(no_color: bool) -> &'static str {
    if no_color {
        "{spinner} {msg} {prefix}"
    } else {
        "{spinner:.cyan} {msg} {prefix:.dim}"
    }
}

/// Whether `NO_COLOR` asks for no color (set to anything non-empty).
pub fn no_color() -> bool {
    crate::env::var(crate::env::NO_COLOR).is_some()
}

impl TerminalReporter {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(spinner_template(no_color())).expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        TerminalReporter { bar }
    }
}

impl Default for TerminalReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TerminalReporter {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

impl Reporter for TerminalReporter {
    fn report(&self, event: Event) {
        match event {
            Event::Step(s) => {
                self.bar.set_prefix("");
                self.bar.set_message(crate::secret::redact(&s));
            }
            Event::Info(s) | Event::Done(s) => {
                self.bar.println(format!("  {}", crate::secret::redact(&s)))
            }
            Event::Warn(s) => self
                .bar
                .println(format!("warning: {}", crate::secret::redact(&s))),
            Event::BuildOutput(s) => self
                .bar
                .println(format!("  | {}", crate::secret::redact(&s))),
            Event::FetchProgress {
                received_objects,
                total_objects,
                received_bytes,
            } => self.bar.set_prefix(format!(
                "{received_objects}/{total_objects} objects, {}",
                human_bytes(received_bytes as u64)
            )),
            Event::ContextProgress { bytes } => self
                .bar
                .set_prefix(format!("context {}", human_bytes(bytes))),
            Event::Deploying { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_drops_the_styles() {
        assert!(!spinner_template(true).contains('.'));
        assert!(spinner_template(false).contains(".cyan"));
    }

    #[test]
    fn mode_is_decided_in_one_place() {
        assert_eq!(OutputMode::decide(true, false, true), OutputMode::Json);
        assert_eq!(OutputMode::decide(true, true, false), OutputMode::Json);
        assert_eq!(OutputMode::decide(false, true, true), OutputMode::Plain);
        assert_eq!(OutputMode::decide(false, false, false), OutputMode::Plain);
        assert_eq!(OutputMode::decide(false, false, true), OutputMode::Terminal);
    }
}
