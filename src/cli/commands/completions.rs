//! `benchctl completions SHELL`: the shell completion script, generated from the clap
//! definitions.

use crate::cli::args::{Cli, CompletionShell, CompletionsArgs};
use crate::cli::print::Output;
use crate::Result;
use clap::CommandFactory;
use std::io::Write;

pub fn exec(args: &CompletionsArgs) -> Result<Output> {
    let shell = match args.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "benchctl", &mut out);
    let _ = std::io::stdout().write_all(&out);
    Ok(Output::Written)
}
