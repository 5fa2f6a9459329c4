//! `podvm patch pod NAME --subresource=status --type=merge|strategic -p
//! PATCH`: sets the conditions of the pod's readiness gates
//! (`pod_status::patch` does the work).

use anyhow::{bail, Result};

use super::Ctx;
use crate::cli::{PatchArgs, PatchType};
use crate::pod_status::patch::{patch_status, PatchKind, PatchOutcome};

pub fn run(ctx: &Ctx, args: &PatchArgs) -> Result<()> {
    if args.subresource.is_none() {
        bail!("podvm patch changes a pod's status only: use --subresource=status");
    }
    let kind = match args.patch_type {
        PatchType::Merge => PatchKind::Merge,
        PatchType::Strategic => PatchKind::Strategic,
        PatchType::Json => {
            bail!("--type=json is not supported: use --type=merge or --type=strategic")
        }
    };
    let outcome = patch_status(&ctx.state, &args.namespace, &args.name, kind, &args.patch)?;
    match outcome {
        PatchOutcome::Patched => println!("pod/{} patched", args.name),
        PatchOutcome::Unchanged => println!("pod/{} patched (no change)", args.name),
    }
    Ok(())
}
