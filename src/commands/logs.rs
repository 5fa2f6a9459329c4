//! `podvm logs NAME [-c C] [-f] [-p] [--tail N] [--timestamps]`: the
//! output of the container's current run (or with `-p` its previous one)
//! as the agent keeps it, in CRI log format, printed the way kubectl
//! prints it and byte for byte (container output need not be UTF-8).

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use podvm_proto::limits::MAX_READ_CHUNK;

use super::{connect_agent, load_pod, pick_container, Ctx};
use crate::cli::LogsArgs;

/// Most bytes of an unterminated line kept while waiting for its end: past
/// this the agent is not sending whole lines, and the bytes are printed.
const MAX_PENDING: usize = 2 * MAX_READ_CHUNK as usize;

pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<()> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let container = pick_container(&record.pod, args.container.as_deref(), false)?;
    let conn = connect_agent(&record, Duration::from_secs(10))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut lines = LineBuffer::default();
    let mut offset = 0;
    let mut tail = args.tail;
    let follow = args.follow && !args.previous;
    loop {
        let read = if args.previous {
            conn.read_previous_log(&container, offset, tail.take())
        } else {
            conn.read_log(&container, offset, tail.take(), follow)
        };
        let chunk = match read {
            Err(e) if e.code() == Some(podvm_proto::Code::NOT_FOUND) && args.previous => bail!(
                "previous terminated container {container:?} in pod {:?} not found",
                args.name
            ),
            other => other.context("cannot read the container's log")?,
        };
        if chunk.next_offset < offset {
            bail!(
                "the agent moved the log offset back from {offset} to {}",
                chunk.next_offset
            );
        }
        // Without -f, an answer that brings nothing is the end too.
        let stalled = chunk.data.is_empty() && chunk.next_offset == offset;
        offset = chunk.next_offset;
        lines.push(&chunk.data, |line| {
            write_cri_line(&mut out, line, args.timestamps)
        })?;
        out.flush().context("cannot write to stdout")?;
        if chunk.end || (stalled && !follow) {
            break;
        }
    }
    lines.finish(|line| write_cri_line(&mut out, line, args.timestamps))?;
    out.flush().context("cannot write to stdout")
}

/// Splits the log's bytes into lines (without their `\n`) across chunks.
#[derive(Default)]
struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    fn push(&mut self, data: &[u8], mut line: impl FnMut(&[u8]) -> Result<()>) -> Result<()> {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            line(&self.pending[start..start + nl])?;
            start += nl + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_PENDING {
            line(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }

    /// The log ended: an unterminated last line is printed as it is.
    fn finish(&mut self, line: impl FnOnce(&[u8]) -> Result<()>) -> Result<()> {
        if !self.pending.is_empty() {
            line(&self.pending)?;
            self.pending.clear();
        }
        Ok(())
    }
}

/// Prints one CRI log line (`<time> <stream> <F|P> <bytes>`): the bytes as
/// they are, then a newline unless the line is a partial one.
pub fn write_cri_line(out: &mut impl Write, line: &[u8], timestamps: bool) -> Result<()> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let (Some(ts), Some(_stream), Some(tag), text) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next().unwrap_or_default(),
    ) else {
        // Not CRI-shaped: print it as it is rather than lose it.
        return out
            .write_all(line)
            .and_then(|_| out.write_all(b"\n"))
            .context("cannot write to stdout");
    };
    let mut write = || -> std::io::Result<()> {
        if timestamps {
            out.write_all(ts)?;
            out.write_all(b" ")?;
        }
        out.write_all(text)?;
        if tag != b"P" {
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    write().context("cannot write to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(lines: &[&[u8]], timestamps: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            write_cri_line(&mut out, line, timestamps).expect("write");
        }
        out
    }

    #[test]
    fn cri_lines_are_printed_like_kubectl() {
        let out = printed(
            &[
                b"2026-01-01T00:00:00.1Z stdout P hel",
                b"2026-01-01T00:00:00.2Z stdout F lo world",
            ],
            false,
        );
        assert_eq!(out, b"hello world\n");
        let out = printed(&[b"2026-01-01T00:00:00.3Z stderr F "], true);
        assert_eq!(out, b"2026-01-01T00:00:00.3Z \n");
        let out = printed(&[b"garbage"], false);
        assert_eq!(out, b"garbage\n");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_printed_as_they_are() {
        let mut line = b"2026-01-01T00:00:00.1Z stdout F ".to_vec();
        let text: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        line.extend_from_slice(&text);
        let mut partial = b"2026-01-01T00:00:00.2Z stdout P \xff\xfe\x00".to_vec();
        partial.push(b' ');
        let out = printed(&[&line, &partial], false);
        let mut want = text.clone();
        want.push(b'\n');
        want.extend_from_slice(b"\xff\xfe\x00 ");
        assert_eq!(out, want);
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut buf = LineBuffer::default();
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut collect = |l: &[u8]| {
            seen.push(l.to_vec());
            Ok(())
        };
        buf.push(b"a b F one\na b F t", &mut collect).expect("push");
        buf.push(b"wo\na b P \xff", &mut collect).expect("push");
        buf.finish(&mut collect).expect("finish");
        assert_eq!(
            seen,
            vec![
                b"a b F one".to_vec(),
                b"a b F two".to_vec(),
                b"a b P \xff".to_vec()
            ]
        );
    }
}
