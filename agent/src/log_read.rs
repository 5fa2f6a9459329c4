//! `ReadLog`: byte-exact chunks of a container's CRI log file, from an
//! offset the client keeps. While the container may still write, a chunk
//! holds whole lines only (a line being written is left for the next call);
//! on the first call `tail_lines` picks where to start. With `follow`, an
//! empty read waits (woken by the container's [`crate::wake::Wake`]) for
//! more lines or for the container to be finished for good.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use podvm_proto::limits::MAX_READ_CHUNK;

use crate::container::Container;
use crate::cri::CriContainer;
use crate::wake::Wake;

/// Smallest chunk handed out, whatever the client asked: more than one
/// whole log record (16 KiB of text plus its prefix), so a chunk always
/// ends at a line end.
pub const MIN_CHUNK: usize = 64 * 1024;
/// Block size of the backwards scan for `tail_lines`.
const TAIL_BLOCK: u64 = 64 * 1024;

/// Why a log read was refused.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("offset {offset} is past the end of the log ({len} bytes)")]
    PastEnd { offset: u64, len: u64 },
    #[error("offset {0} is not at the start of a log line")]
    NotLineStart(u64),
    #[error("reading the log: {0}")]
    Io(#[from] io::Error),
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    pub offset: u64,
    /// Used on the first call (offset 0) only.
    pub tail_lines: Option<u64>,
    pub follow: bool,
    /// Most bytes wanted (0: as many as the agent gives).
    pub len: u32,
}

/// One answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    pub data: Vec<u8>,
    pub next_offset: u64,
    /// Nothing more will come (see [`read_log`]).
    pub end: bool,
}

/// The chunk size for a request's `len`.
fn chunk_len(len: u32) -> usize {
    let len = if len == 0 { MAX_READ_CHUNK } else { len };
    (len.min(MAX_READ_CHUNK) as usize).max(MIN_CHUNK)
}

/// A log that can be read: one run of a pod's container, or a container
/// of the container-level API.
pub trait LogSource {
    fn log_path(&self) -> PathBuf;
    /// Bumped at every log line and state change.
    fn wake(&self) -> &Wake;
    /// It will never log again and all its output is in the log.
    fn is_finished(&self) -> bool;
}

/// One run of a pod's container: its own log file, over once the run
/// ended (a follower stops there, as `kubectl logs -f` does when the
/// container exits).
pub struct RunLog<'a> {
    pub container: &'a Container,
    pub run: u32,
}

impl LogSource for RunLog<'_> {
    fn log_path(&self) -> PathBuf {
        self.container.log_of(self.run)
    }

    fn wake(&self) -> &Wake {
        &self.container.wake
    }

    fn is_finished(&self) -> bool {
        self.container.run_over(self.run)
    }
}

impl LogSource for CriContainer {
    fn log_path(&self) -> PathBuf {
        CriContainer::log_path(self).to_path_buf()
    }

    fn wake(&self) -> &Wake {
        CriContainer::wake(self)
    }

    fn is_finished(&self) -> bool {
        CriContainer::is_finished(self)
    }
}

/// Answers one `ReadLog` request, waiting at most `hold` when following.
///
/// `end` is set when not following and everything available was sent, or
/// when following and the container is finished for good and everything
/// was sent.
pub fn read_log(
    container: &impl LogSource,
    req: &LogRequest,
    hold: Duration,
) -> Result<LogChunk, LogReadError> {
    let deadline = Instant::now().checked_add(hold);
    let len = chunk_len(req.len);
    let file = match File::open(container.log_path()) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let size = match &file {
        Some(f) => f.metadata()?.len(),
        None => 0,
    };
    if req.offset > size {
        return Err(LogReadError::PastEnd {
            offset: req.offset,
            len: size,
        });
    }
    let mut offset = req.offset;
    match (&file, req.tail_lines) {
        (Some(f), Some(n)) if offset == 0 => offset = tail_offset(f, size, n)?,
        (Some(f), _) => check_line_start(f, offset)?,
        (None, _) => {}
    }
    loop {
        // Looked at before reading: when finished, all output is in the file.
        let seen = container.wake().current();
        let finished = container.is_finished();
        let (data, at_eof) = match File::open(container.log_path()) {
            Ok(f) => read_at(&f, offset, len)?,
            Err(e) if e.kind() == ErrorKind::NotFound => (Vec::new(), true),
            Err(e) => return Err(e.into()),
        };
        let take = sendable(&data, finished && at_eof, len);
        if take > 0 || !req.follow || (finished && at_eof) {
            let all_sent = at_eof && take == data.len();
            let end = if req.follow {
                finished && all_sent
            } else {
                at_eof
            };
            let mut data = data;
            data.truncate(take);
            return Ok(LogChunk {
                next_offset: offset + take as u64,
                data,
                end,
            });
        }
        let left = deadline.map_or(hold, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Ok(LogChunk {
                data: Vec::new(),
                next_offset: offset,
                end: false,
            });
        }
        container.wake().wait_past(seen, left);
    }
}

/// How much of `data` (read from a line start) may be sent: whole lines,
/// or everything once the writer is done (`complete`). A full window with
/// no line end at all (not written by this agent) is sent as it is, so a
/// reader always makes progress.
fn sendable(data: &[u8], complete: bool, window: usize) -> usize {
    if complete {
        return data.len();
    }
    match data.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if data.len() >= window => data.len(),
        None => 0,
    }
}

/// Reads up to `len` bytes at `offset`; also says whether the end of the
/// file was reached.
fn read_at(file: &File, offset: u64, len: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut data = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut data[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    data.truncate(got);
    Ok((data, got < len))
}

/// Refuses an offset that does not follow a line end.
fn check_line_start(file: &File, offset: u64) -> Result<(), LogReadError> {
    if offset == 0 {
        return Ok(());
    }
    let mut byte = [0u8; 1];
    match file.read_at(&mut byte, offset - 1)? {
        1 if byte[0] == b'\n' => Ok(()),
        _ => Err(LogReadError::NotLineStart(offset)),
    }
}

/// Where the last `n` whole lines of the first `size` bytes of `file`
/// start (a line still being written is not counted; fewer lines than `n`:
/// 0).
fn tail_offset(file: &File, size: u64, n: u64) -> io::Result<u64> {
    let mut pos = size;
    let mut end_of_lines = None;
    let mut lines = 0u64;
    let mut buf = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(TAIL_BLOCK);
        buf.resize((pos - start) as usize, 0);
        file.read_exact_at(&mut buf, start)?;
        for (i, b) in buf.iter().enumerate().rev() {
            if *b != b'\n' {
                continue;
            }
            let after = start + i as u64 + 1;
            if end_of_lines.is_none() {
                end_of_lines = Some(after);
                if n == 0 {
                    return Ok(after);
                }
            } else {
                lines += 1;
                if lines == n {
                    return Ok(after);
                }
            }
        }
        pos = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        let read = f.reopen().unwrap();
        (f, read)
    }

    fn tail(data: &[u8], n: u64) -> usize {
        let (_keep, f) = file_with(data);
        tail_offset(&f, data.len() as u64, n).unwrap() as usize
    }

    #[test]
    fn tail_positions() {
        let data = b"a\nb\nc\n";
        assert_eq!(&data[tail(data, 1)..], b"c\n");
        assert_eq!(&data[tail(data, 2)..], b"b\nc\n");
        assert_eq!(&data[tail(data, 3)..], b"a\nb\nc\n");
        assert_eq!(&data[tail(data, 10)..], b"a\nb\nc\n");
        assert_eq!(tail(data, 0), data.len());
        assert_eq!(tail(b"", 2), 0);
        // A line still being written is not one of the last lines.
        let partial = b"a\nb\npart";
        assert_eq!(&partial[tail(partial, 1)..], b"b\npart");
        assert_eq!(tail(partial, 0), 4);
    }

    #[test]
    fn tail_across_scan_blocks() {
        let line = vec![b'x'; 1000];
        let mut data = Vec::new();
        for _ in 0..300 {
            data.extend_from_slice(&line);
            data.push(b'\n');
        }
        assert_eq!(data.len() - tail(&data, 150), 150 * 1001);
        assert_eq!(tail(&data, 300), 0);
    }

    #[test]
    fn only_whole_lines_until_complete() {
        assert_eq!(sendable(b"one\ntwo\nthr", false, 100), 8);
        assert_eq!(sendable(b"one\ntwo\nthr", true, 100), 11);
        assert_eq!(sendable(b"partial", false, 100), 0);
        // A full window without a line end still moves the reader on.
        assert_eq!(sendable(b"0123456789", false, 10), 10);
    }

    #[test]
    fn offsets_are_checked() {
        let (_keep, f) = file_with(b"ab\ncd\n");
        assert!(check_line_start(&f, 0).is_ok());
        assert!(check_line_start(&f, 3).is_ok());
        assert!(check_line_start(&f, 6).is_ok());
        assert!(matches!(
            check_line_start(&f, 2),
            Err(LogReadError::NotLineStart(2))
        ));
        assert_eq!(read_at(&f, 3, 100).unwrap(), (b"cd\n".to_vec(), true));
        assert_eq!(read_at(&f, 0, 2).unwrap(), (b"ab".to_vec(), false));
    }

    #[test]
    fn chunk_sizes_are_bounded() {
        assert_eq!(chunk_len(0), MAX_READ_CHUNK as usize);
        assert_eq!(chunk_len(1), MIN_CHUNK);
        assert_eq!(chunk_len(u32::MAX), MAX_READ_CHUNK as usize);
    }
}
