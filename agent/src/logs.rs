//! Container output in the CRI log format.
//!
//! Every line a container writes becomes
//! `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n` in
//! `<run>/logs/<container>.log`. Lines longer than [`MAX_LINE`] are split into
//! `P` (partial) records ending with an `F` (full) one, as containerd does; a
//! last line without a newline is written as `F` when the stream ends.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::console::say;
use crate::ids::now_rfc3339_nano;
use crate::wake::Wake;

/// Longest line written as one record (containerd's default, 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which output stream of a container a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdout,
    Stderr,
}

/// A container's log file, shared by its stdout and stderr readers.
pub struct LogSink {
    file: Mutex<File>,
    wake: Arc<Wake>,
}

impl LogSink {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path, wake: Arc<Wake>) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(LogSink {
            file: Mutex::new(file),
            wake,
        })
    }

    fn write_record(&self, stream: StdStream, partial: bool, text: &[u8]) {
        let record = format_record(&now_rfc3339_nano(), stream, partial, text);
        let result = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write_all(&record);
        if let Err(e) = result {
            say!("writing a log record failed: {e}");
        }
        self.wake.notify();
    }
}

/// One CRI log record.
pub fn format_record(timestamp: &str, stream: StdStream, partial: bool, text: &[u8]) -> Vec<u8> {
    let stream = match stream {
        StdStream::Stdout => "stdout",
        StdStream::Stderr => "stderr",
    };
    let tag = if partial { "P" } else { "F" };
    let mut record = Vec::with_capacity(text.len() + timestamp.len() + 12);
    record.extend_from_slice(format!("{timestamp} {stream} {tag} ").as_bytes());
    record.extend_from_slice(text);
    record.push(b'\n');
    record
}

/// Splits a byte stream into records; calls `emit(partial, text)` per record.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; complete lines and over-long pieces are emitted.
    pub fn push(&mut self, data: &[u8], mut emit: impl FnMut(bool, &[u8])) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = &self.pending[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(nl) if nl <= MAX_LINE => {
                    emit(false, &rest[..nl]);
                    start += nl + 1;
                }
                _ if rest.len() > MAX_LINE => {
                    emit(true, &rest[..MAX_LINE]);
                    start += MAX_LINE;
                }
                _ => break,
            }
        }
        self.pending.drain(..start);
    }

    /// The stream ended: a pending unterminated line is emitted as full.
    pub fn finish(&mut self, mut emit: impl FnMut(bool, &[u8])) {
        if !self.pending.is_empty() {
            emit(false, &self.pending);
            self.pending.clear();
        }
    }
}

/// Copies `pipe` into `sink` as `stream` records until end of file.
pub fn spawn_reader(
    mut pipe: File,
    stream: StdStream,
    sink: Arc<LogSink>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("log-reader".into())
        .spawn(move || {
            let mut splitter = LineSplitter::default();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => splitter.push(&buf[..n], |p, t| sink.write_record(stream, p, t)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        say!("reading container output failed: {e}");
                        break;
                    }
                }
            }
            splitter.finish(|p, t| sink.write_record(stream, p, t));
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::default();
        for c in chunks {
            s.push(c, |p, t| out.push((p, t.to_vec())));
        }
        s.finish(|p, t| out.push((p, t.to_vec())));
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"hel", b"lo\nwor", b"ld\n\nlast"]),
            vec![
                (false, b"hello".to_vec()),
                (false, b"world".to_vec()),
                (false, b"".to_vec()),
                (false, b"last".to_vec()),
            ]
        );
    }

    #[test]
    fn long_lines_become_partials() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let mut input = long.clone();
        input.push(b'\n');
        let out = split(&[&input]);
        assert_eq!(out.len(), 3);
        assert!(out[0].0 && out[1].0 && !out[2].0);
        assert_eq!(out[0].1.len(), MAX_LINE);
        assert_eq!(out[2].1.len(), 5);
        let exact = [vec![b'y'; MAX_LINE], b"\n".to_vec()].concat();
        assert_eq!(split(&[&exact]), vec![(false, vec![b'y'; MAX_LINE])]);
    }

    #[test]
    fn record_format() {
        let r = format_record(
            "2024-01-02T03:04:05.000000006Z",
            StdStream::Stderr,
            false,
            b"oops",
        );
        assert_eq!(r, b"2024-01-02T03:04:05.000000006Z stderr F oops\n");
        let r = format_record("t", StdStream::Stdout, true, b"");
        assert_eq!(r, b"t stdout P \n");
    }
}
