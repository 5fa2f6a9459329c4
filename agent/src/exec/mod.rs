//! Processes exec'd in running containers, kata-agent style: `ExecProcess`
//! starts one and hands out an id; stdin, output, signals and the exit are
//! separate calls on that id.
//!
//! The table holds at most [`MAX_EXECS`]. Once its exit code was answered
//! (`WaitProcess`) an exec is gone for every call but the output reads,
//! which go on until both streams were read to their end; then it is
//! removed. When the table is full, an exec whose process ended makes room
//! (one already waited for first, then the oldest); running ones never do.

mod output;
mod process;
pub mod run;
mod terminal;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;
use podvm_proto::limits::MAX_WRITE_CHUNK;

use crate::container::{Container, RunningInfo};
use crate::ids::random_id;
use crate::logs::StdStream;
pub use output::Chunk;
use process::Exec;
pub use process::ExecOptions;
pub use terminal::WinSize;

/// Most execs held at once (running, or ended and not yet forgotten).
pub const MAX_EXECS: usize = 32;

/// Why an exec call failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec needs a command")]
    NoCommand,
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("no exec with id {0:?}")]
    UnknownExec(String),
    #[error("too many execs ({MAX_EXECS} are running or not yet waited for)")]
    TooMany,
    #[error("invalid signal number {0}")]
    BadSignal(u32),
    #[error("a stdin chunk of {0} bytes is over the limit of {MAX_WRITE_CHUNK}")]
    ChunkTooLarge(usize),
    #[error("stdin of this exec is closed")]
    StdinClosed,
    #[error("the process closed its stdin")]
    StdinGone,
    #[error("the process is still running")]
    StillRunning,
    #[error("this exec has no terminal")]
    NoTerminal,
    #[error("invalid terminal size {rows}x{cols} (1 to 65535 each)")]
    BadSize { rows: u32, cols: u32 },
    #[error("setting up the terminal: {0}")]
    Terminal(#[source] std::io::Error),
    #[error("starting the exec helper: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("writing to the process's stdin: {0}")]
    Write(#[source] std::io::Error),
    #[error("signalling the process: {0}")]
    Signal(#[source] nix::Error),
}

struct Entry {
    exec: Arc<Exec>,
    /// Creation order, for choosing what to evict.
    serial: u64,
}

#[derive(Default)]
struct Table {
    live: HashMap<String, Entry>,
    /// Starts under way (counted against the limit).
    starting: usize,
    next_serial: u64,
}

impl Table {
    /// Makes room for one more by forgetting an exec whose process ended.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .live
            .iter()
            .filter(|(_, e)| e.exec.exited())
            .min_by_key(|(_, e)| (!e.exec.waited(), e.serial))
            .map(|(id, _)| id.clone());
        match victim.and_then(|id| self.live.remove(&id)) {
            Some(entry) => {
                entry.exec.abandon();
                true
            }
            None => false,
        }
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct Execs {
    table: Mutex<Table>,
}

/// Gives back a start reservation however the start ends.
struct Reservation<'a>(&'a Execs);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut table = self.0.lock();
        table.starting = table.starting.saturating_sub(1);
    }
}

impl Execs {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `argv` in `container`; returns the new exec's id.
    pub fn start(
        &self,
        container: &Container,
        argv: Vec<String>,
        options: ExecOptions,
    ) -> Result<String, ExecError> {
        self.start_in(container.name(), container.running(), argv, options)
    }

    /// Starts `argv` in the container named `container`, which runs as
    /// `running` (`None`: it does not run); returns the new exec's id.
    pub fn start_in(
        &self,
        container: &str,
        running: Option<RunningInfo>,
        argv: Vec<String>,
        options: ExecOptions,
    ) -> Result<String, ExecError> {
        if argv.first().is_none_or(String::is_empty) {
            return Err(ExecError::NoCommand);
        }
        let running = running.ok_or_else(|| ExecError::NotRunning(container.to_string()))?;
        let reservation = {
            let mut table = self.lock();
            if table.live.len() + table.starting >= MAX_EXECS && !table.evict_one() {
                return Err(ExecError::TooMany);
            }
            table.starting += 1;
            Reservation(self)
        };
        let exec = Exec::start_in(running, argv, options)?;
        let id = random_id().map_err(ExecError::Spawn)?;
        let mut table = self.lock();
        let serial = table.next_serial;
        table.next_serial += 1;
        table.live.insert(
            id.clone(),
            Entry {
                exec: Arc::new(exec),
                serial,
            },
        );
        drop(table);
        drop(reservation);
        Ok(id)
    }

    /// An exec whose exit code was not answered yet.
    fn active(&self, id: &str) -> Result<Arc<Exec>, ExecError> {
        self.lock()
            .live
            .get(id)
            .filter(|e| !e.exec.waited())
            .map(|e| Arc::clone(&e.exec))
            .ok_or_else(|| ExecError::UnknownExec(id.to_string()))
    }

    /// Writes to the process's stdin (at most [`MAX_WRITE_CHUNK`] bytes),
    /// waiting up to `hold` for it to take them; returns how many it took.
    pub fn write_stdin(&self, id: &str, data: &[u8], hold: Duration) -> Result<usize, ExecError> {
        if data.len() > MAX_WRITE_CHUNK {
            return Err(ExecError::ChunkTooLarge(data.len()));
        }
        self.active(id)?.write_stdin(data, hold)
    }

    pub fn close_stdin(&self, id: &str) -> Result<(), ExecError> {
        self.active(id)?.close_stdin();
        Ok(())
    }

    /// Sends signal number `signal` to the process.
    pub fn signal(&self, id: &str, signal: u32) -> Result<(), ExecError> {
        let sig = i32::try_from(signal)
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .ok_or(ExecError::BadSignal(signal))?;
        self.active(id)?.signal(sig)
    }

    /// Sets the window size of an exec's terminal.
    pub fn resize(&self, id: &str, size: WinSize) -> Result<(), ExecError> {
        self.active(id)?.resize(size)
    }

    /// Up to `max` bytes of an output stream, waiting up to `hold` for
    /// some; `eof` once the stream ended and everything was read.
    pub fn read(
        &self,
        id: &str,
        stream: StdStream,
        max: usize,
        hold: Duration,
    ) -> Result<Chunk, ExecError> {
        let exec = self
            .lock()
            .live
            .get(id)
            .map(|e| Arc::clone(&e.exec))
            .ok_or_else(|| ExecError::UnknownExec(id.to_string()))?;
        let chunk = exec.output(stream).read(max, hold);
        if chunk.eof {
            self.forget_if_done(id, &exec);
        }
        Ok(chunk)
    }

    /// Waits up to `hold` for the process to end; its exit code, after
    /// which the exec is forgotten (its output stays readable to the end).
    pub fn wait(&self, id: &str, hold: Duration) -> Result<i32, ExecError> {
        let exec = self.active(id)?;
        let code = exec.wait(hold).ok_or(ExecError::StillRunning)?;
        exec.set_waited();
        self.forget_if_done(id, &exec);
        Ok(code)
    }

    /// Removes `exec` once it was waited for and its output read.
    fn forget_if_done(&self, id: &str, exec: &Arc<Exec>) {
        if !(exec.waited() && exec.drained()) {
            return;
        }
        let mut table = self.lock();
        if table
            .live
            .get(id)
            .is_some_and(|e| Arc::ptr_eq(&e.exec, exec))
        {
            table.live.remove(id);
        }
    }

    /// How many execs are held (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_ids_and_bad_arguments() {
        let execs = Execs::default();
        assert!(matches!(
            execs.wait("nope", Duration::ZERO),
            Err(ExecError::UnknownExec(_))
        ));
        assert!(matches!(
            execs.read("nope", StdStream::Stdout, 10, Duration::ZERO),
            Err(ExecError::UnknownExec(_))
        ));
        assert!(matches!(
            execs.close_stdin("nope"),
            Err(ExecError::UnknownExec(_))
        ));
        assert!(matches!(
            execs.write_stdin("nope", b"x", Duration::ZERO),
            Err(ExecError::UnknownExec(_))
        ));
        assert!(matches!(
            execs.write_stdin("nope", &vec![0; MAX_WRITE_CHUNK + 1], Duration::ZERO),
            Err(ExecError::ChunkTooLarge(_))
        ));
        for bad in [0, 65, 1000, u32::MAX] {
            assert!(
                matches!(execs.signal("nope", bad), Err(ExecError::BadSignal(n)) if n == bad),
                "{bad}"
            );
        }
        assert!(matches!(
            execs.signal("nope", 15),
            Err(ExecError::UnknownExec(_))
        ));
        assert_eq!(execs.len(), 0);
    }
}
