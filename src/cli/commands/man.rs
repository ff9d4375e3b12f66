//! `benchctl man`: the man page (roff), generated from the clap definitions.

use crate::cli::args::Cli;
use crate::cli::print::Output;
use crate::{Error, Result};
use clap::CommandFactory;
use std::io::Write;

pub fn exec() -> Result<Output> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| Error::usage(format!("cannot render the man page: {e}")))?;
    let _ = std::io::stdout().write_all(&out);
    Ok(Output::Written)
}
