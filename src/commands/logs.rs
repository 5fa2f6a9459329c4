//! `podvm logs NAME [-c C] [-f]`: the container's output as the agent keeps
//! it, in CRI log format, printed the way kubectl prints it.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use podvm_proto::{Request, Response};

use super::{agent_of, load_pod, pick_container, Ctx};
use crate::cli::LogsArgs;

pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<()> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let container = pick_container(&record.pod, args.container.as_deref(), false)?;
    let client = agent_of(&record)?;
    let req = Request::Logs {
        container,
        follow: args.follow,
        tail_lines: args.tail,
    };
    let mut stream = client.open_stream(&req, Duration::from_secs(10))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while let Some(reply) = stream.next_reply()? {
        match reply {
            Response::Log { lines } => {
                for line in lines.lines() {
                    write_cri_line(&mut out, line, args.timestamps)?;
                }
                out.flush().context("cannot write to stdout")?;
            }
            Response::End => break,
            other => anyhow::bail!("unexpected reply from the agent: {other:?}"),
        }
    }
    Ok(())
}

/// Prints one CRI log line (`<time> <stream> <F|P> <text>`): the text, a
/// newline unless the line is a partial one.
pub fn write_cri_line(out: &mut impl Write, line: &str, timestamps: bool) -> Result<()> {
    let mut parts = line.splitn(4, ' ');
    let (Some(ts), Some(_stream), Some(tag), text) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next().unwrap_or(""),
    ) else {
        // Not CRI-shaped: print it as it is rather than lose it.
        return writeln!(out, "{line}").context("cannot write to stdout");
    };
    if timestamps {
        write!(out, "{ts} ").context("cannot write to stdout")?;
    }
    write!(out, "{text}").context("cannot write to stdout")?;
    if tag != "P" {
        writeln!(out).context("cannot write to stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_are_printed_like_kubectl() {
        let mut out = Vec::new();
        write_cri_line(&mut out, "2026-01-01T00:00:00.1Z stdout P hel", false).unwrap();
        write_cri_line(&mut out, "2026-01-01T00:00:00.2Z stdout F lo world", false).unwrap();
        write_cri_line(&mut out, "2026-01-01T00:00:00.3Z stderr F ", true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "hello world\n2026-01-01T00:00:00.3Z \n"
        );
    }
}
