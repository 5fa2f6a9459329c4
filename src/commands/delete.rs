//! `podvm delete pod NAME`: stop the containers (TERM, grace, KILL), power
//! the VM off, stop its processes, remove sockets and state.

use std::time::Duration;

use anyhow::Result;

use super::{connect_agent, load_pod, Ctx};
use crate::cli::DeleteArgs;
use crate::sandbox::DEFAULT_GRACE_SECONDS;
use crate::state::PodRecord;

pub fn run(ctx: &Ctx, args: &DeleteArgs) -> Result<()> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    delete(ctx, &record, args.grace_period)?;
    println!("pod \"{}\" deleted", args.name);
    Ok(())
}

pub fn delete(ctx: &Ctx, record: &PodRecord, grace: Option<u64>) -> Result<()> {
    let grace = grace.unwrap_or_else(|| {
        record
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .map(|g| g.max(0) as u64)
            .unwrap_or(DEFAULT_GRACE_SECONDS)
    });
    if let Some(vm) = &record.vm {
        if vm.is_running() {
            match connect_agent(record, Duration::from_secs(10)) {
                Ok(conn) => {
                    let grace = Duration::from_secs(grace);
                    if let Err(e) = conn.stop_sandbox(grace, grace + Duration::from_secs(15)) {
                        eprintln!("warning: the agent did not stop the containers cleanly: {e:#}");
                    }
                    if let Err(e) = conn.shutdown(Duration::from_secs(10)) {
                        eprintln!("warning: the agent did not shut the VM down: {e:#}");
                    }
                }
                Err(e) => eprintln!("warning: cannot reach the agent to stop the pod: {e:#}"),
            }
        }
        // Give the guest a moment to power off by itself, then stop
        // whatever is left.
        vm.stop(Duration::from_secs(10));
    }
    let ns = record
        .pod
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let name = record.pod.metadata.name.as_deref().unwrap_or_default();
    ctx.state.remove(ns, name)
}
