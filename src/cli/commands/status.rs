//! `benchctl status KEY`: an issue's bench (state, health, address, commit, age) and the
//! result of its last deploy.

use super::Ctx;
use crate::cli::args::IssueArg;
use crate::cli::print::Output;
use crate::{naming, Result};

pub async fn exec(args: &IssueArg, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let engine = cx.engine.backend()?.connect().await?;
    Ok(crate::app::inspect::status(&engine, &issue).await?.into())
}
