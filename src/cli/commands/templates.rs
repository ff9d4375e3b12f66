//! `benchctl templates [BRANCH]`: the Dockerfile templates, and which one the branch's deploy
//! would use and why.

use super::Ctx;
use crate::cli::args::ConfigArgs;
use crate::cli::print::{Output, Templates};
use crate::cli::resolve;
use crate::{env, Result};
use std::path::PathBuf;

pub fn exec(args: &ConfigArgs, cx: &Ctx<'_>) -> Result<Output> {
    let dir = env::var(env::TEMPLATES_DIR).map(PathBuf::from);
    let list = crate::build::templates::list(dir.as_deref());
    let branch = resolve::resolve_shown(args, cx.matches, cx.reporter)?
        .map(|(req, _)| (req.branch, req.template, req.dockerfile));
    Ok(Templates { list, branch }.into())
}
