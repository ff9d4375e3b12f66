//! `benchctl tracker init`: the queue's "Bench link" field and the close trigger.

use crate::cli::args::TrackerInitArgs;
use crate::cli::print::Output;
use crate::cli::resolve;
use crate::secret::ProcessEnv;
use crate::{env, Error, Result};

pub async fn exec(args: &TrackerInitArgs, cx: &super::Ctx<'_>) -> Result<Output> {
    let tracker = resolve::tracker_client(&args.tracker, cx.reporter)?.ok_or_else(|| {
        Error::usage(
            "tracker init needs the Tracker: set BENCHCTL_TRACKER_TOKEN (or \
             BENCHCTL_TRACKER_IAM_TOKEN) and BENCHCTL_TRACKER_ORG_ID (or \
             BENCHCTL_TRACKER_CLOUD_ORG_ID)",
        )
    })?;
    let secret = crate::secret::secret_from_env(&ProcessEnv, env::TRACKER_HOOK_SECRET)?;
    let opts = crate::tracker::InitOptions {
        queue: args.queue.clone(),
        field_key: args.field_key.clone(),
        field_name: args.field_name.clone(),
        hook_url: args.hook_url.clone(),
        closed_status: args.closed_status.clone(),
        apply: args.apply,
    };
    Ok(crate::tracker::init(&tracker, &opts, secret.as_ref())
        .await?
        .into())
}
