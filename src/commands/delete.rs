//! `podvm delete pod NAME [--grace-period N] [--force] [--now]`: the
//! pod's owner stops the containers (TERM, the grace period, KILL), powers
//! the VM off and removes everything. The flags are read by kubectl's
//! rules (`manager::kubectl_grace`).

use anyhow::Result;

use super::Ctx;
use crate::cli::DeleteArgs;
use crate::manager::kubectl_grace;

pub fn run(ctx: &Ctx, args: &DeleteArgs) -> Result<()> {
    let choice = kubectl_grace(args.grace_period, args.force, args.now)?;
    if let Some(warning) = choice.warning {
        eprintln!("{warning}");
    }
    ctx.manager
        .delete(&args.namespace, &args.name, choice.grace)?;
    let verb = if choice.forced() {
        "force deleted"
    } else {
        "deleted"
    };
    println!("pod \"{}\" {verb}", args.name);
    Ok(())
}
