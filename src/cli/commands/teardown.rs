//! `benchctl teardown KEY` (or `--branch`): removes an issue's bench and clears its field.

use super::Ctx;
use crate::app;
use crate::cli::args::TeardownArgs;
use crate::cli::print::{Output, SkippedNoIssue, Teardown};
use crate::cli::resolve;
use crate::naming::{self, DEFAULT_ISSUE_PATTERN};
use crate::secret::ProcessEnv;
use crate::{Error, Result};

pub async fn exec(args: &TeardownArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = match (
        &args.issue,
        args.branch.clone().or_else(resolve::branch_from_ci),
    ) {
        (Some(k), _) => naming::normalize_issue_key(k)?,
        (None, Some(branch)) => {
            let pattern = args
                .issue_pattern
                .as_deref()
                .unwrap_or(DEFAULT_ISSUE_PATTERN);
            match naming::issue_key_from_branch(&branch, pattern) {
                Ok(k) => k,
                Err(Error::NoIssueKey { .. }) if args.skip_no_issue => {
                    return Ok(SkippedNoIssue { branch }.into());
                }
                Err(e) => return Err(e),
            }
        }
        (None, None) => {
            return Err(Error::usage(
                "name the bench: `benchctl teardown PROJ-42`, or --branch <branch> (in CI the \
                 branch variable is used)",
            ))
        }
    };
    let field = crate::settings::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?;
    let services =
        resolve::Services::new(&args.tracker, &args.code_host, !args.keep_link, cx.reporter)?;
    let engine = cx.engine.backend()?.connect().await?;
    let ctx = services.context(&engine, cx.reporter, args.lock.options());
    let keep = app::teardown::Keep {
        link: args.keep_link,
        volumes: args.keep_volumes,
        hook_limit: std::time::Duration::from_secs(args.max_hook_timeout.max(1)),
    };
    let outcome = app::teardown::run(&ctx, &issue, &field, keep, "benchctl teardown").await?;
    Ok(Teardown { outcome, field }.into())
}
