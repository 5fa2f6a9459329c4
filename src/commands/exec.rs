//! `podvm exec NAME [-c C] [-i] -- CMD...`: run a command in a container;
//! its output is streamed and its exit code becomes ours.

use std::time::Duration;

use anyhow::Result;

use super::{connect_agent, load_pod, pick_container, Ctx};
use crate::cli::ExecArgs;
use crate::exec_session::{self, ExecRequest};

/// Returns the command's exit code.
pub fn run(ctx: &Ctx, args: &ExecArgs) -> Result<i32> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let container = pick_container(&record.pod, args.container.as_deref(), true)?;
    let conn = connect_agent(&record, Duration::from_secs(10))?;
    let req = ExecRequest {
        container: &container,
        argv: &args.command,
        stdin: args.stdin.then(std::io::stdin),
        stdout: std::io::stdout(),
        stderr: std::io::stderr(),
    };
    Ok(exec_session::run(&conn, req)?)
}
