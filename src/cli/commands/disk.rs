//! `benchctl disk`: what each bench holds on the engine's disk, and the room left there.

use super::Ctx;
use crate::cli::print::{Disk, Output};
use crate::secret::ProcessEnv;
use crate::Result;

pub async fn exec(cx: &Ctx<'_>) -> Result<Output> {
    let engine = cx.engine.backend()?.connect().await?;
    let local = crate::settings::remote_engine_host(&ProcessEnv).is_none();
    Ok(Disk(crate::app::disk::report(&engine, local).await?).into())
}
