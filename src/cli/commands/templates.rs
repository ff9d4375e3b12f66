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
    let branch = match resolve::shown_inputs(args, cx.matches)? {
        Some(inputs) => {
            let (req, _) = inputs.resolve(cx.reporter)?;
            Some((req.branch, req.bench.template, req.bench.dockerfile))
        }
        None => None,
    };
    Ok(Templates { list, branch }.into())
}
