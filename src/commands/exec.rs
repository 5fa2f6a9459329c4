//! `podvm exec NAME [-c C] [-i] -- CMD...`: run a command in a container;
//! its output is streamed and its exit code becomes ours.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use podvm_proto::{Request, Response, StdStream};

use super::{agent_of, load_pod, pick_container, Ctx};
use crate::cli::ExecArgs;

/// Largest stdin passed along (it travels in one frame, base64-encoded).
const MAX_STDIN: u64 = 2 * 1024 * 1024;

/// Returns the command's exit code.
pub fn run(ctx: &Ctx, args: &ExecArgs) -> Result<i32> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let container = pick_container(&record.pod, args.container.as_deref(), true)?;
    let client = agent_of(&record)?;
    let mut stdin = Vec::new();
    if args.stdin {
        std::io::stdin()
            .take(MAX_STDIN + 1)
            .read_to_end(&mut stdin)
            .context("cannot read stdin")?;
        if stdin.len() as u64 > MAX_STDIN {
            bail!("stdin is larger than {MAX_STDIN} bytes");
        }
    }
    let req = Request::Exec {
        container,
        argv: args.command.clone(),
        stdin,
    };
    let mut stream = client.open_stream(&req, Duration::from_secs(10))?;
    while let Some(reply) = stream.next_reply()? {
        match reply {
            Response::Output { stream, data } => {
                let res = match stream {
                    StdStream::Stdout => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&data).and_then(|_| o.flush())
                    }
                    StdStream::Stderr => std::io::stderr().lock().write_all(&data),
                };
                res.context("cannot write output")?;
            }
            Response::ExecExit { exit_code } => return Ok(exit_code),
            other => bail!("unexpected reply from the agent: {other:?}"),
        }
    }
    bail!("the agent closed the connection before the command finished")
}
