//! One output stream (stdout or stderr) of an exec'd process: a pump thread
//! copies the pipe into a bounded buffer that `ReadStdout`/`ReadStderr`
//! drain. When the buffer is full the pump stops reading, the pipe fills
//! and the process blocks in `write` (backpressure) instead of the agent's
//! memory growing. Bytes are bytes: nothing is decoded.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::console::say;

/// Most bytes buffered per stream before the process is made to wait.
pub const OUTPUT_BUFFER: usize = 512 * 1024;
/// Most bytes the pump reads from the pipe at once.
const PUMP_CHUNK: usize = 32 * 1024;

/// What a read got.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub data: Vec<u8>,
    /// The stream ended and everything before was already taken.
    pub eof: bool,
}

#[derive(Default)]
struct State {
    data: VecDeque<u8>,
    /// The pipe reached end of file.
    ended: bool,
    /// A reader was told about the end.
    eof_taken: bool,
    /// Nobody will read any more: the pump throws bytes away.
    abandoned: bool,
}

/// See the module documentation.
pub struct Output {
    capacity: usize,
    state: Mutex<State>,
    /// Bytes arrived or the stream ended.
    readable: Condvar,
    /// Room was made, or the stream was abandoned.
    writable: Condvar,
}

impl Output {
    pub fn new(capacity: usize) -> Self {
        Output {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            readable: Condvar::new(),
            writable: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A stream that has already ended (stderr of a terminal exec, whose
    /// output all comes out of the terminal).
    pub fn ended() -> Self {
        let out = Output::new(1);
        out.finish();
        out
    }

    /// Blocks until the buffer has room; returns how much (all of
    /// `PUMP_CHUNK` once abandoned, as those bytes are dropped anyway).
    fn room(&self) -> usize {
        let mut state = self.lock();
        loop {
            if state.abandoned {
                return PUMP_CHUNK;
            }
            let free = self.capacity.saturating_sub(state.data.len());
            if free > 0 {
                return free.min(PUMP_CHUNK);
            }
            state = self
                .writable
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Appends bytes (dropped once abandoned).
    fn push(&self, bytes: &[u8]) {
        let mut state = self.lock();
        if !state.abandoned {
            state.data.extend(bytes);
            self.readable.notify_all();
        }
    }

    /// The pipe ended.
    fn finish(&self) {
        self.lock().ended = true;
        self.readable.notify_all();
    }

    /// Takes up to `max` bytes, waiting up to `hold` for some to arrive.
    /// Empty data without `eof`: nothing came in time.
    pub fn read(&self, max: usize, hold: Duration) -> Chunk {
        let deadline = Instant::now().checked_add(hold);
        let mut state = self.lock();
        loop {
            if !state.data.is_empty() {
                let n = state.data.len().min(max.max(1));
                let data: Vec<u8> = state.data.drain(..n).collect();
                self.writable.notify_all();
                return Chunk { data, eof: false };
            }
            if state.ended {
                state.eof_taken = true;
                return Chunk {
                    data: Vec::new(),
                    eof: true,
                };
            }
            let left = deadline.map_or(hold, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return Chunk::default();
            }
            state = self
                .readable
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Whether a reader was told the stream ended.
    pub fn eof_taken(&self) -> bool {
        self.lock().eof_taken
    }

    /// Nobody will read any more: buffered bytes are dropped and the pump
    /// drains the pipe so the process never blocks on it.
    pub fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        state.data = VecDeque::new();
        drop(state);
        self.writable.notify_all();
    }
}

/// Starts the thread that copies `pipe` (a pipe, or a terminal's master)
/// into `out` until end of file.
pub fn spawn_pump(mut pipe: File, out: Arc<Output>, name: &str) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut buf = vec![0u8; PUMP_CHUNK];
            loop {
                let room = out.room().min(buf.len());
                match pipe.read(&mut buf[..room]) {
                    Ok(0) => break,
                    Ok(n) => out.push(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // A terminal master shares its non-blocking flag with
                    // the stdin side: wait for bytes instead.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
                        let _ = poll(&mut fds, PollTimeout::NONE);
                    }
                    // A terminal master reads EIO once every slave is closed.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                    Err(e) => {
                        say!("reading exec output failed: {e}");
                        break;
                    }
                }
            }
            out.finish();
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Last-resort limit for waits that progress ends.
    const LONG: Duration = Duration::from_secs(300);

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    #[test]
    fn bytes_arrive_in_order_then_eof() {
        let (r, mut w) = pipe();
        let out = Arc::new(Output::new(OUTPUT_BUFFER));
        spawn_pump(r, Arc::clone(&out), "test-pump").unwrap();
        let sent: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        w.write_all(&sent).unwrap();
        drop(w);
        let mut got = Vec::new();
        loop {
            let chunk = out.read(7000, LONG);
            assert!(chunk.data.len() <= 7000);
            if chunk.eof {
                assert!(chunk.data.is_empty());
                break;
            }
            got.extend(chunk.data);
        }
        assert_eq!(got, sent);
        assert!(out.eof_taken());
        // The end is reported again to later reads.
        assert!(out.read(10, Duration::ZERO).eof);
    }

    #[test]
    fn nothing_within_the_hold_is_an_empty_answer() {
        let out = Output::new(16);
        assert_eq!(out.read(10, Duration::ZERO), Chunk::default());
        assert!(!out.eof_taken());
    }

    #[test]
    fn a_full_buffer_stops_the_pump_until_read() {
        let (r, mut w) = pipe();
        let out = Arc::new(Output::new(1000));
        spawn_pump(r, Arc::clone(&out), "test-pump").unwrap();
        // Far more than the buffer plus the pipe's capacity: the writer can
        // only finish once the reader below takes bytes out.
        let total = 4 * 1024 * 1024;
        let writer = std::thread::spawn(move || {
            let data = vec![b'x'; total];
            w.write_all(&data).unwrap();
        });
        let mut seen = 0;
        loop {
            let chunk = out.read(usize::MAX, LONG);
            // Never more than the bound is held.
            assert!(chunk.data.len() <= 1000);
            if chunk.eof {
                break;
            }
            seen += chunk.data.len();
        }
        writer.join().unwrap();
        assert_eq!(seen, total);
    }

    #[test]
    fn an_abandoned_stream_is_drained() {
        let (r, mut w) = pipe();
        let out = Arc::new(Output::new(10));
        spawn_pump(r, Arc::clone(&out), "test-pump").unwrap();
        out.abandon();
        // Would block for ever if the pump stopped at 10 bytes.
        w.write_all(&vec![0u8; 1024 * 1024]).unwrap();
        drop(w);
        assert!(out.read(100, LONG).eof);
    }
}
