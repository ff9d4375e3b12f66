//! `benchctl gc`: removes benches of closed issues, benches past `--ttl`, leftovers of
//! interrupted deploys, abandoned locks and unused images (only what carries benchctl's labels).

use super::Ctx;
use crate::cli::args::GcArgs;
use crate::cli::print::{Gc, Output};
use crate::cli::resolve;
use crate::secret::ProcessEnv;
use crate::{Error, Result};

pub async fn exec(args: &GcArgs, cx: &Ctx<'_>) -> Result<Output> {
    let ttl = match &args.ttl {
        Some(t) => Some(crate::app::gc::parse_duration(t).ok_or_else(|| {
            Error::usage(format!("--ttl `{t}` is not a duration (e.g. 90m, 12h, 3d)"))
        })?),
        None => None,
    };
    let scope = match &args.scope {
        Some(s) => Some(crate::git::resolve_repo(Some(s))?.public()),
        None => None,
    };
    let opts = crate::app::gc::GcOptions {
        dry_run: args.dry_run,
        ttl,
        closed_statuses: args.closed.closed_statuses.clone(),
        scope,
        field: crate::settings::bench_field(args.tracker.field.as_deref(), &ProcessEnv)?,
        clear_link: !args.keep_link,
        cache_dir: resolve::cache_dir(&args.cache_dir)?,
        cache_max_age: crate::app::gc::parse_duration(&args.cache_max_age).ok_or_else(|| {
            Error::usage(format!(
                "--cache-max-age `{}` is not a duration (e.g. 12h, 14d)",
                args.cache_max_age
            ))
        })?,
        build_cache: args.build_cache,
        pin_tag: args.pin_tag.clone(),
        last_used: Default::default(),
        hook_limit: std::time::Duration::from_secs(args.max_hook_timeout.max(1)),
    };
    let tracker = resolve::tracker_client(&args.tracker, cx.reporter)?;
    let engine = cx.engine.backend()?.connect().await?;
    let engine = &engine;
    let actions = crate::app::gc::gc(
        engine,
        tracker.as_ref(),
        &opts,
        cx.reporter,
        args.lock.options(),
    )
    .await?;
    let local = crate::settings::remote_engine_host(&ProcessEnv).is_none();
    // the report is a courtesy: an engine that cannot tell does not fail the clean-up
    let disk = crate::app::disk::report(engine, local).await.ok();
    Ok(Gc {
        actions,
        dry_run: args.dry_run,
        disk,
    }
    .into())
}
