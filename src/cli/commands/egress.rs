//! `benchctl egress close|open|status`: benchctl's firewall rules on this host, by hand (as
//! root), for an operator who runs deploys without root or wants the rules before serve starts.

use crate::cli::args::{EgressAction, EgressArgs};
use crate::cli::print::{Egress, Output};
use crate::engine::egress;
use crate::Result;

pub fn exec(args: &EgressArgs) -> Result<Output> {
    let done = match args.action {
        EgressAction::Close => egress::close()?,
        EgressAction::Open => egress::open()?,
        EgressAction::Status => Vec::new(),
    };
    Ok(Egress {
        closed: egress::closed()?,
        done,
    }
    .into())
}
