//! `benchctl link KEY`: writes the address of an issue's running bench into its field again.

use super::Ctx;
use crate::cli::args::LinkArgs;
use crate::cli::print::Output;
use crate::cli::resolve;
use crate::secret::ProcessEnv;
use crate::{env, naming, Error, Result};

pub async fn exec(args: &LinkArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let field = crate::settings::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?;
    let tracker = resolve::tracker_client(&args.tracker, cx.reporter)?.ok_or_else(|| {
        Error::usage(format!(
            "no Tracker is configured; set {} (or {}) and {} (or {})",
            env::TRACKER_TOKEN,
            env::TRACKER_IAM_TOKEN,
            env::TRACKER_ORG_ID,
            env::TRACKER_CLOUD_ORG_ID
        ))
    })?;
    let engine = cx.engine.backend()?.connect().await?;
    let outcome = crate::app::link::link(&issue, &engine, &tracker, &field, cx.reporter).await?;
    Ok(outcome.into())
}
