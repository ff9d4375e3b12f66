//! `benchctl pin KEY [--until DATE]` and `benchctl unpin KEY`: keep an issue's bench from
//! expiring (`--ttl`), and let it expire again. The pin lives on the engine, as a labelled marker.

use super::Ctx;
use crate::cli::args::{PinArgs, UnpinArgs};
use crate::cli::print::{Output, Pinned};
use crate::{naming, Error, Result};

pub async fn pin(args: &PinArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let now = crate::clock::now_unix();
    let until = match &args.until {
        Some(u) => Some(crate::app::pin::parse_until(u, now).ok_or_else(|| {
            Error::usage(format!(
                "--until `{u}` is neither a date (2026-12-31) nor a duration (7d)"
            ))
        })?),
        None => None,
    };
    let engine = cx.engine.backend()?.connect().await?;
    let pin = crate::app::pin::pin(&engine, &issue, until).await?;
    Ok(Pinned {
        issue,
        pin: Some(pin),
        was_pinned: true,
    }
    .into())
}

pub async fn unpin(args: &UnpinArgs, cx: &Ctx<'_>) -> Result<Output> {
    let issue = naming::normalize_issue_key(&args.issue)?;
    let engine = cx.engine.backend()?.connect().await?;
    let was_pinned = crate::app::pin::unpin(&engine, &issue).await?;
    Ok(Pinned {
        issue,
        pin: None,
        was_pinned,
    }
    .into())
}
