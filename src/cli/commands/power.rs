//! `benchctl sleep KEY` and `benchctl wake KEY`: stop an issue's bench in place and start it
//! again (the use cases are `app::sleep`'s, which serve's idle clock and proxy call too).

use super::Ctx;
use crate::cli::args::{CodeHostArgs, SleepArgs, WakeArgs};
use crate::cli::print::{Output, Slept, Woke};
use crate::cli::resolve;
use crate::{naming, Result};
use std::time::Duration;

pub async fn sleep(args: &SleepArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let services = resolve::Services::new(
        &Default::default(),
        &CodeHostArgs::default(),
        false,
        cx.reporter,
    )?;
    let engine = cx.engine.backend()?.connect().await?;
    let ctx = services.context(&engine, cx.reporter, args.lock.options());
    Ok(Slept(crate::app::sleep::sleep(&ctx, &issue, "by hand").await?).into())
}

pub async fn wake(args: &WakeArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let services =
        resolve::Services::new(&args.tracker, &CodeHostArgs::default(), true, cx.reporter)?;
    let engine = cx.engine.backend()?.connect().await?;
    let ctx = services.context(&engine, cx.reporter, args.lock.options());
    let timeout = Duration::from_secs(args.ready_timeout);
    let cap = crate::app::cap::Cap {
        max_running: args.max_running,
        max_memory: args
            .max_memory_total
            .as_deref()
            .map(crate::settings::values::parse_bytes)
            .transpose()?,
        last_used: Default::default(),
    };
    Ok(Woke(crate::app::sleep::wake(&ctx, &issue, timeout, &cap).await?).into())
}
