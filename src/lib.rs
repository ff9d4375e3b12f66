//! benchctl: give every Yandex Tracker issue its own Docker test bench.
//!
//! The binary (`main.rs`) only calls [`run`]. [`cli`] parses and prints; [`server`] takes
//! webhooks; both call the use cases in [`app`] (deploy, teardown, link, gc), which work
//! through [`engine`] (images, benches, markers; Docker or Swarm), [`git`], [`build`],
//! [`tracker`] and [`notify`], with settings from [`settings`]. The use cases never print:
//! they report to [`output`].

pub mod app;
pub mod build;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod engine;
pub mod env;
pub mod error;
pub mod feedback;
pub mod git;
pub mod naming;
pub mod notify;
pub mod output;
pub mod secret;
pub mod server;
pub mod settings;
pub mod signal;
pub mod tracker;

pub use error::{Error, Result};

/// Entry point used by the binary: parses `args`, runs the command and returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    cli::run(args)
}
