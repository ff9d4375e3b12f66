//! `benchctl logs KEY`: what an issue's bench prints, streamed to stdout as it comes.

use super::Ctx;
use crate::cli::args::LogsArgs;
use crate::cli::print::Output;
use crate::{naming, Error, Result};
use futures_util::StreamExt;
use std::io::Write;

pub async fn exec(args: &LogsArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let engine = cx.engine.backend()?.connect().await?;
    let engine = &engine;
    let Some(bench) = crate::app::inspect::find_bench(engine, &issue).await? else {
        return Err(Error::usage(format!("{issue} has no bench")));
    };
    let mut stream = engine.benches.logs(&bench.id, args.follow, args.tail);
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
            break; // the reader went away (e.g. `| head`)
        }
    }
    Ok(Output::Written)
}
