//! `benchctl list`: every bench benchctl runs on the engine, found by label.

use super::Ctx;
use crate::cli::print::{Benches, Output};
use crate::Result;

pub async fn exec(args: &crate::cli::args::ListArgs, cx: &Ctx<'_>) -> Result<Output> {
    let engine = cx.engine.backend()?.connect().await?;
    let rows = crate::app::inspect::list(&engine).await?;
    Ok(Benches {
        rows,
        totals: args.totals,
    }
    .into())
}
