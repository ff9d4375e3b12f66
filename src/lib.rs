//! benchctl: give every Yandex Tracker issue its own Docker test bench.
//!
//! The binary (`main.rs`) only calls [`run`]. Everything else is split by concern:
//! [`cli`] parses, [`config`] resolves settings, [`git`] fetches the branch, [`image`] streams
//! the build context and builds, [`runtime`] runs containers, [`tracker`] talks to the Tracker,
//! [`bench`] orchestrates, and [`output`] draws what the orchestration reports.

pub mod app;
pub mod cli;
pub mod clock;
pub mod dockerfile;
pub mod dockerignore;
pub mod engine;
pub mod env;
pub mod error;
pub mod gc;
pub mod git;
pub mod image;
pub mod lock;
pub mod naming;
pub mod notify;
pub mod output;
pub mod secret;
pub mod server;
pub mod settings;
pub mod signal;
pub mod templates;
pub mod tracker;
pub mod webhook;

pub use error::{Error, Result};

/// Entry point used by the binary: parses `args`, runs the command and returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    cli::run(args)
}
