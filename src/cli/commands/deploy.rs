//! `benchctl deploy BRANCH`: resolves the deploy (every input checked before any work), then
//! runs the deploy use case until it ends or a signal stops it.

use super::Ctx;
use crate::app;
use crate::app::deploy::{Finished, Stop};
use crate::cli::args::DeployArgs;
use crate::cli::print::{Output, SkippedNoIssue};
use crate::cli::resolve;
use crate::error::exit;
use crate::{Error, Result};

pub async fn exec(args: &DeployArgs, cx: &Ctx<'_>) -> Result<Output> {
    let inputs = resolve::deploy_inputs(
        &args.source,
        &args.bench,
        &args.tracker,
        !args.no_link,
        args.force,
        cx.matches,
    )?;
    let prepared = crate::settings::prepare(
        &inputs.settings(),
        inputs.repo.clone(),
        &inputs.branch,
        cx.reporter,
    );
    let req = match prepared {
        Err(Error::NoIssueKey { branch, .. }) if args.skip_no_issue => {
            return Ok(SkippedNoIssue { branch }.into());
        }
        other => other?,
    };
    let services =
        resolve::Services::new(&args.tracker, &args.code_host, req.policy.link, cx.reporter)?;
    let engine = cx
        .engine
        .pushing_backend(inputs.local.as_ref())?
        .connect()
        .await?;
    let ctx = services.context(&engine, cx.reporter, args.lock.options());
    let stop = async {
        let (name, code) = crate::signal::interrupted().await;
        Stop::Signal { name, code }
    };
    // the messengers hear of failed deploys, not of bad input (the user sees that at once)
    match app::deploy::run(&ctx, &req, stop, |e| e.exit_code() == exit::FAILURE).await {
        Finished::Done(outcome) => Ok(outcome.into()),
        // what the code host was told goes with the error (`--json`: `code_host`)
        Finished::Failed {
            error,
            code_host: Some(code_host),
        } => Ok(crate::cli::print::Failed { error, code_host }.into()),
        Finished::Failed { error, .. } => Err(error),
        Finished::Stopped {
            stop: Stop::Signal { name, code },
            cleanup,
        } => Err(Error::Interrupted {
            signal: name.to_string(),
            cleanup,
            code,
        }),
        Finished::Stopped { cleanup, .. } => Err(Error::Engine(format!("stopped; {cleanup}"))),
    }
}
