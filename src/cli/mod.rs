//! The command line: [`args`] (clap definitions), [`resolve`] (arguments to settings, backend,
//! Tracker), [`commands`] (one file per command), [`print`] (the one printer). [`run`] parses,
//! runs the command with a reporter, then prints its result once the reporter is gone.

pub mod args;
mod commands;
mod print;
mod resolve;

use crate::error::exit;
use args::Cli;
use clap::{CommandFactory, FromArgMatches};

/// The version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BENCHCTL_COMMIT"),
    ")"
);

/// Parses `args` and runs the command; returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let color = if crate::output::no_color() {
        clap::ColorChoice::Never
    } else {
        clap::ColorChoice::Auto
    };
    let parsed = Cli::command()
        .color(color)
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m).map(|c| (c, m)));
    let (cli, matches) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let mode = crate::output::OutputMode::from_process(cli.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::FAILURE;
        }
    };
    // the subcommand's own matches tell where each value came from (flag or environment)
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    let reporter = mode.reporter();
    let cx = commands::Ctx {
        engine: &cli.engine,
        matches: &sub,
        reporter: &reporter,
    };
    let result = runtime.block_on(commands::exec(&cli.command, &cx));
    // the progress display is cleared before the result is printed
    drop(reporter);
    match result {
        Ok(output) => print::print(mode, &output),
        Err(e) => {
            print::error(&e, mode);
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
