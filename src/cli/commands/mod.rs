//! One file per command, each with one `exec`: it resolves its arguments, calls the use case
//! and returns what to print (rendering is `print/`'s business).

mod completions;
mod config;
mod deploy;
mod disk;
mod egress;
mod gc;
mod link;
mod list;
mod logs;
mod man;
mod pin;
mod power;
mod serve;
mod status;
mod teardown;
mod templates;
mod tracker;

use super::args::{Command, EngineArgs, TrackerCommand};
use super::print::Output;
use crate::output::SharedReporter;
use crate::Result;
use clap::ArgMatches;

/// What every command runs with.
pub struct Ctx<'a> {
    /// Where benches run (the global flags).
    pub engine: &'a EngineArgs,
    /// The subcommand's own matches: where each value came from (flag or environment).
    pub matches: &'a ArgMatches,
    pub reporter: &'a SharedReporter,
}

/// Runs `command`.
pub async fn exec(command: &Command, cx: &Ctx<'_>) -> Result<Output> {
    match command {
        Command::Deploy(a) => deploy::exec(a, cx).await,
        Command::List(a) => list::exec(a, cx).await,
        Command::Teardown(a) => teardown::exec(a, cx).await,
        Command::Link(a) => link::exec(a, cx).await,
        Command::Status(a) => status::exec(a, cx).await,
        Command::Logs(a) => logs::exec(a, cx).await,
        Command::Gc(a) => gc::exec(a, cx).await,
        Command::Disk => disk::exec(cx).await,
        Command::Pin(a) => pin::pin(a, cx).await,
        Command::Unpin(a) => pin::unpin(a, cx).await,
        Command::Sleep(a) => power::sleep(a, cx).await,
        Command::Wake(a) => power::wake(a, cx).await,
        Command::Serve(a) => serve::exec(a, cx).await,
        Command::Tracker(TrackerCommand::Init(a)) => tracker::exec(a, cx).await,
        Command::Templates(a) => templates::exec(a, cx),
        Command::Completions(a) => completions::exec(a),
        Command::Egress(a) => egress::exec(a),
        Command::Man => man::exec(),
        Command::Config(a) => config::exec(a, cx).await,
    }
}
