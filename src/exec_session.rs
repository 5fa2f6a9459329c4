//! One `exec` in a container, end to end: start the process, pump the
//! host's stdin into it as it arrives, copy its stdout and stderr out byte
//! for byte until both end, then wait for its exit code. The agent calls
//! go through [`ExecApi`] so the orchestration is tested with a fake; the
//! real implementation is [`AgentConn`], whose clones share one connection
//! (ttrpc carries the concurrent calls on it).

use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use podvm_proto::limits::MAX_WRITE_CHUNK;
use podvm_proto::{AgentConn, ClientError, OutputStream};

pub use crate::terminal::WindowSize;

/// Pause before offering stdin bytes again when the agent took none (the
/// process is not reading).
const STDIN_BACKOFF: Duration = Duration::from_millis(20);

/// The agent calls an exec needs.
pub trait ExecApi: Clone + Send + 'static {
    fn exec(&self, container: &str, argv: &[String], stdin: bool) -> Result<String, ClientError>;
    fn write_stdin(&self, exec_id: &str, data: &[u8]) -> Result<usize, ClientError>;
    fn close_stdin(&self, exec_id: &str) -> Result<(), ClientError>;
    fn read_output(
        &self,
        exec_id: &str,
        stream: OutputStream,
    ) -> Result<Option<Vec<u8>>, ClientError>;
    fn wait(&self, exec_id: &str) -> Result<i32, ClientError>;
    /// Starts the process on a terminal of this size (stdin open; all
    /// output on stdout).
    fn exec_on_terminal(
        &self,
        container: &str,
        argv: &[String],
        size: WindowSize,
    ) -> Result<String, ClientError>;
    fn resize(&self, exec_id: &str, size: WindowSize) -> Result<(), ClientError>;
}

impl ExecApi for AgentConn {
    fn exec(&self, container: &str, argv: &[String], stdin: bool) -> Result<String, ClientError> {
        AgentConn::exec(self, container, argv, stdin)
    }
    fn write_stdin(&self, exec_id: &str, data: &[u8]) -> Result<usize, ClientError> {
        AgentConn::write_stdin(self, exec_id, data)
    }
    fn close_stdin(&self, exec_id: &str) -> Result<(), ClientError> {
        AgentConn::close_stdin(self, exec_id)
    }
    fn read_output(
        &self,
        exec_id: &str,
        stream: OutputStream,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        AgentConn::read_output(self, exec_id, stream)
    }
    fn wait(&self, exec_id: &str) -> Result<i32, ClientError> {
        AgentConn::wait(self, exec_id)
    }
    fn exec_on_terminal(
        &self,
        container: &str,
        argv: &[String],
        size: WindowSize,
    ) -> Result<String, ClientError> {
        AgentConn::exec_on_terminal(self, container, argv, size.rows, size.cols)
    }
    fn resize(&self, exec_id: &str, size: WindowSize) -> Result<(), ClientError> {
        AgentConn::resize_terminal(self, exec_id, size.rows, size.cols)
    }
}

/// Why an exec failed (the command's own failure is its exit code).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("the agent could not start the command")]
    Start(#[source] ClientError),
    #[error("cannot read the host's stdin")]
    Input(#[source] io::Error),
    #[error("passing stdin to the command failed")]
    Stdin(#[source] ClientError),
    #[error("the agent claims to have taken {taken} of {offered} stdin bytes")]
    BadWriteReply { taken: usize, offered: usize },
    #[error("reading the command's {stream} failed")]
    Output {
        stream: &'static str,
        #[source]
        source: ClientError,
    },
    #[error("cannot write the command's {stream}")]
    Write {
        stream: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("waiting for the command failed")]
    Wait(#[source] ClientError),
    #[error("cannot start a thread")]
    Thread(#[source] io::Error),
    #[error("an output pump ended without a result")]
    PumpLost,
}

/// What to run, and where its streams go.
pub struct ExecRequest<'a, R, O, E> {
    pub container: &'a str,
    pub argv: &'a [String],
    /// The host's input; `None` gives the command an empty stdin.
    pub stdin: Option<R>,
    pub stdout: O,
    pub stderr: E,
    /// Run on a terminal: its first size, and every later size.
    pub terminal: Option<Terminal>,
}

/// The terminal an exec runs on.
pub struct Terminal {
    pub size: WindowSize,
    /// Each new size of the host's terminal (SIGWINCH), forwarded as it
    /// comes until the sender goes away.
    pub resizes: mpsc::Receiver<WindowSize>,
}

/// Runs one exec to its end; the command's exit code (128+N for signal N).
///
/// The stdin pump is not waited for: it may be blocked reading a host
/// input that never ends after the command has exited. Errors of the
/// stdin pump are not ours to report: a command that exits or closes its
/// stdin early makes the agent refuse further writes, which is normal.
pub fn run<A, R, O, E>(api: &A, req: ExecRequest<'_, R, O, E>) -> Result<i32, ExecError>
where
    A: ExecApi,
    R: Read + Send + 'static,
    O: Write + Send + 'static,
    E: Write + Send + 'static,
{
    let exec_id = match &req.terminal {
        Some(t) => api.exec_on_terminal(req.container, req.argv, t.size),
        None => api.exec(req.container, req.argv, req.stdin.is_some()),
    }
    .map_err(ExecError::Start)?;
    if let Some(terminal) = req.terminal {
        let (api, id) = (api.clone(), exec_id.clone());
        thread::Builder::new()
            .name("exec-resize".into())
            .spawn(move || {
                for size in terminal.resizes {
                    if api.resize(&id, size).is_err() {
                        break;
                    }
                }
            })
            .map_err(ExecError::Thread)?;
    }
    if let Some(input) = req.stdin {
        let (api, id) = (api.clone(), exec_id.clone());
        thread::Builder::new()
            .name("exec-stdin".into())
            .spawn(move || {
                let _ = pump_stdin(&api, &id, input);
            })
            .map_err(ExecError::Thread)?;
    }
    let (done_tx, done_rx) = mpsc::channel();
    for (stream, out) in [
        (
            OutputStream::Stdout,
            Box::new(req.stdout) as Box<dyn Write + Send>,
        ),
        (OutputStream::Stderr, Box::new(req.stderr)),
    ] {
        let (api, id, done) = (api.clone(), exec_id.clone(), done_tx.clone());
        thread::Builder::new()
            .name("exec-output".into())
            .spawn(move || {
                let _ = done.send(pump_output(&api, &id, stream, out));
            })
            .map_err(ExecError::Thread)?;
    }
    drop(done_tx);
    // The wait runs alongside the output pumps (the agent keeps serving
    // the streams to their end after answering it), saving a round trip
    // at the end; its answer is used once both streams ended.
    let (wait_tx, wait_rx) = mpsc::channel();
    {
        let (api, id) = (api.clone(), exec_id.clone());
        thread::Builder::new()
            .name("exec-wait".into())
            .spawn(move || {
                let _ = wait_tx.send(api.wait(&id));
            })
            .map_err(ExecError::Thread)?;
    }
    // Both streams to their end; the first failure ends the exec at once
    // (the other pump may be blocked on a stream that never ends).
    for _ in 0..2 {
        done_rx.recv().map_err(|_| ExecError::PumpLost)??;
    }
    wait_rx
        .recv()
        .map_err(|_| ExecError::PumpLost)?
        .map_err(ExecError::Wait)
}

/// Copies `input` to the process's stdin as it arrives, in chunks of at
/// most [`MAX_WRITE_CHUNK`] bytes, and closes the process's stdin at end of
/// input. A failing input also closes it (and is then reported).
pub fn pump_stdin<A: ExecApi>(
    api: &A,
    exec_id: &str,
    mut input: impl Read,
) -> Result<(), ExecError> {
    let mut buf = vec![0u8; MAX_WRITE_CHUNK];
    let ended = loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(ExecError::Input(e)),
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let taken = api.write_stdin(exec_id, chunk).map_err(ExecError::Stdin)?;
            if taken > chunk.len() {
                return Err(ExecError::BadWriteReply {
                    taken,
                    offered: chunk.len(),
                });
            }
            if taken == 0 {
                thread::sleep(STDIN_BACKOFF);
            }
            chunk = &chunk[taken..];
        }
    };
    api.close_stdin(exec_id).map_err(ExecError::Stdin)?;
    ended
}

/// Copies one output stream of the process to `out`, byte for byte, until
/// the stream ends.
pub fn pump_output<A: ExecApi>(
    api: &A,
    exec_id: &str,
    stream: OutputStream,
    mut out: impl Write,
) -> Result<(), ExecError> {
    let name = match stream {
        OutputStream::Stdout => "stdout",
        OutputStream::Stderr => "stderr",
    };
    while let Some(data) = api
        .read_output(exec_id, stream)
        .map_err(|source| ExecError::Output {
            stream: name,
            source,
        })?
    {
        if data.is_empty() {
            continue;
        }
        out.write_all(&data)
            .and_then(|_| out.flush())
            .map_err(|source| ExecError::Write {
                stream: name,
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
