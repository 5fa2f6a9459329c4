//! `podvm delete pod NAME`: the pod's owner stops the containers (TERM,
//! the grace period, KILL), powers the VM off and removes everything.

use anyhow::Result;

use super::Ctx;
use crate::cli::DeleteArgs;

pub fn run(ctx: &Ctx, args: &DeleteArgs) -> Result<()> {
    ctx.manager
        .delete(&args.namespace, &args.name, args.grace_period)?;
    println!("pod \"{}\" deleted", args.name);
    Ok(())
}
