//! One exec'd process: started in a running container through the exec
//! helper (`__podvm_exec`, see `helper/exec.rs`), with its stdin kept open
//! for `WriteStdin` when asked, its stdout and stderr (or its terminal)
//! pumped into bounded buffers, and its exit delivered by the reaper.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::output::{spawn_pump, Output, OUTPUT_BUFFER};
use super::terminal::{self, open_in_container, Pty, WinSize};
use super::ExecError;
use crate::container::config::{next_report, ExecConfig, ShimReport};
use crate::container::{Container, RunningInfo};
use crate::logs::StdStream;
use crate::reaper::Exit;
use crate::spawn::{helper_command, spawn_helper, EXEC};

/// ^D, the terminal's default end-of-file character.
const VEOF: u8 = 0x04;

/// See the module documentation.
pub struct Exec {
    /// The write end of the process's stdin while it is open.
    stdin: Mutex<Option<File>>,
    stdout: Arc<Output>,
    stderr: Arc<Output>,
    /// The terminal's master, for an exec on a terminal.
    terminal: Option<File>,
    /// The exec helper's exit, which is the process's (128+N for signal N).
    exit: Arc<Exit>,
    /// The process as the agent sees it; `None` when the helper failed
    /// before starting it.
    pid: Option<Pid>,
    /// The exit code was answered: only the output stays readable.
    waited: AtomicBool,
}

/// How an exec's stdio is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    /// Keep stdin open for `WriteStdin` (otherwise the process reads end
    /// of file at once).
    pub stdin: bool,
    /// Run on a terminal of this size (everything comes out of stdout).
    pub terminal: Option<WinSize>,
}

/// The agent's ends of an exec's stdin and terminal, once the helper runs.
struct Ends {
    stdin: Option<File>,
    terminal: Option<File>,
}

/// Makes a descriptor non-blocking: writes to it must never hold an RPC
/// thread longer than its hold (they wait with poll instead).
fn non_blocking(fd: impl Into<OwnedFd>) -> Result<File, ExecError> {
    let fd = fd.into();
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| ExecError::Spawn(e.into()))?;
    Ok(File::from(fd))
}

/// A terminal exec: the master is pumped into `stdout` and, when stdin is
/// kept, written by `WriteStdin`.
fn terminal_ends(master: File, keep_stdin: bool, stdout: &Arc<Output>) -> Result<Ends, ExecError> {
    let reader = master.try_clone().map_err(ExecError::Terminal)?;
    pump(Some(reader), stdout, "exec-tty").map_err(ExecError::Spawn)?;
    // Shared with the reader's descriptor: the pump copes (see `output`).
    let master = non_blocking(master)?;
    let stdin = match keep_stdin {
        true => Some(master.try_clone().map_err(ExecError::Terminal)?),
        false => None,
    };
    Ok(Ends {
        stdin,
        terminal: Some(master),
    })
}

/// A piped exec: stdout and stderr pumped, stdin (if kept) written.
fn pipe_ends(
    child: &mut Child,
    stdout: &Arc<Output>,
    stderr: &Arc<Output>,
) -> Result<Ends, ExecError> {
    pump(child.stdout.take(), stdout, "exec-stdout").map_err(ExecError::Spawn)?;
    pump(child.stderr.take(), stderr, "exec-stderr").map_err(ExecError::Spawn)?;
    let stdin = child.stdin.take().map(non_blocking).transpose()?;
    Ok(Ends {
        stdin,
        terminal: None,
    })
}

impl Exec {
    /// Starts `argv` in `container`, which must be running.
    pub fn start(
        container: &Container,
        argv: Vec<String>,
        options: ExecOptions,
    ) -> Result<Exec, ExecError> {
        let running = container
            .running()
            .ok_or_else(|| ExecError::NotRunning(container.name().to_string()))?;
        Exec::start_in(running, argv, options)
    }

    /// Starts `argv` in the running container `running`: its spec's
    /// process with `argv` instead of its args (the environment, working
    /// directory, user, capabilities and limits are the container's).
    pub fn start_in(
        running: RunningInfo,
        argv: Vec<String>,
        options: ExecOptions,
    ) -> Result<Exec, ExecError> {
        let mut process = running.process;
        process.set_args(Some(argv));
        let pty = options
            .terminal
            .map(|size| open_in_container(running.pid, size))
            .transpose()
            .map_err(ExecError::Terminal)?;
        process.set_terminal(Some(pty.is_some()));
        if pty.is_some() {
            let env = process.env_mut().get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.starts_with("TERM=")) {
                // As containerd does for a process on a terminal.
                env.push("TERM=xterm".into());
            }
        }
        let config = ExecConfig {
            pid: running.pid,
            cgroup: running.cgroup,
            process,
            tty: pty.is_some(),
        };
        let config = serde_json::to_vec(&config).map_err(|e| ExecError::Spawn(e.into()))?;
        let mut cmd = helper_command(EXEC);
        match &pty {
            Some(pty) => {
                let slave = || pty.slave.try_clone().map_err(ExecError::Terminal);
                cmd.stdin(slave()?).stdout(slave()?).stderr(slave()?);
            }
            None => {
                cmd.stdin(if options.stdin {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            }
        }
        let mut helper = spawn_helper(cmd, &config, true).map_err(ExecError::Spawn)?;
        // From here on the helper runs; what fails below ends it again.
        let stdout = Arc::new(Output::new(OUTPUT_BUFFER));
        let (stderr, ends) = match pty {
            Some(Pty { master, slave }) => {
                // Only the process may hold the slave: its end is the
                // terminal's end (the master then reads EIO).
                drop(slave);
                let ends = terminal_ends(master, options.stdin, &stdout);
                (Arc::new(Output::ended()), ends)
            }
            None => {
                let stderr = Arc::new(Output::new(OUTPUT_BUFFER));
                let ends = pipe_ends(&mut helper.child, &stdout, &stderr);
                (stderr, ends)
            }
        };
        // The helper reports the process's PID once it forked it (or ends
        // without a report when it could not get that far).
        let pid = helper.status.take().and_then(|status| {
            match next_report(&mut BufReader::new(status)) {
                Some(ShimReport::Pid { pid }) if pid > 0 => Some(Pid::from_raw(pid)),
                _ => None,
            }
        });
        let ends = match ends {
            Ok(ends) => ends,
            Err(e) => {
                // Unusable: end the process (the caller never sees an id)
                // and let any started pump drain what is left.
                stdout.abandon();
                stderr.abandon();
                if let Some(pid) = pid {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                return Err(e);
            }
        };
        Ok(Exec {
            stdin: Mutex::new(ends.stdin),
            terminal: ends.terminal,
            stdout,
            stderr,
            exit: helper.exit,
            pid,
            waited: AtomicBool::new(false),
        })
    }

    /// The output buffer of `stream`.
    pub fn output(&self, stream: StdStream) -> &Output {
        match stream {
            StdStream::Stdout => &self.stdout,
            StdStream::Stderr => &self.stderr,
        }
    }

    /// Writes as much of `data` to stdin as the process takes within
    /// `hold`; returns how much that was.
    pub fn write_stdin(&self, data: &[u8], hold: Duration) -> Result<usize, ExecError> {
        let guard = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
        let file = guard.as_ref().ok_or(ExecError::StdinClosed)?;
        let deadline = Instant::now().checked_add(hold);
        let mut written = 0;
        while written < data.len() {
            match (&*file).write(&data[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left =
                        deadline.map_or(hold, |d| d.saturating_duration_since(Instant::now()));
                    if left.is_zero() {
                        break;
                    }
                    wait_writable(file, left);
                }
                // What was written counts; the next call reports the error.
                Err(_) if written > 0 => break,
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                    return Err(ExecError::StdinGone)
                }
                Err(e) => return Err(ExecError::Write(e)),
            }
        }
        Ok(written)
    }

    /// Closes stdin: the process reads end of file. On a terminal, which
    /// has no end of file to give, that is typing ^D (VEOF). Closing twice
    /// is fine.
    pub fn close_stdin(&self) {
        let stdin = self
            .stdin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(file), Some(_)) = (stdin, &self.terminal) {
            let _ = (&file).write(&[VEOF]);
        }
    }

    /// Sets the size of the exec's terminal.
    pub fn resize(&self, size: WinSize) -> Result<(), ExecError> {
        let master = self.terminal.as_ref().ok_or(ExecError::NoTerminal)?;
        terminal::resize(master, size).map_err(ExecError::Terminal)
    }

    /// Sends `signal` to the process; a process that already ended ignores
    /// it, as `kill` does for a zombie.
    pub fn signal(&self, signal: Signal) -> Result<(), ExecError> {
        let Some(pid) = self.pid else {
            return Ok(());
        };
        // The PID stays the process's until the helper (its parent) reaped
        // it, and the helper exits right after; checking that the helper
        // still runs narrows PID reuse to that instant.
        if self.exited() {
            return Ok(());
        }
        match kill(pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(ExecError::Signal(e)),
        }
    }

    /// Waits up to `hold` for the process to end; its exit code (128+N for
    /// signal N), or `None` while it still runs.
    pub fn wait(&self, hold: Duration) -> Option<i32> {
        self.exit.wait_timeout(hold).map(|s| s.code())
    }

    /// The process as the agent sees it, once the helper started it.
    pub fn pid(&self) -> Option<Pid> {
        self.pid
    }

    pub fn exited(&self) -> bool {
        self.exit.wait_timeout(Duration::ZERO).is_some()
    }

    /// Records that the exit code was answered.
    pub fn set_waited(&self) {
        self.waited.store(true, Ordering::SeqCst);
    }

    pub fn waited(&self) -> bool {
        self.waited.load(Ordering::SeqCst)
    }

    /// Both output streams were read to their end.
    pub fn drained(&self) -> bool {
        self.stdout.eof_taken() && self.stderr.eof_taken()
    }

    /// The exec is being forgotten: stdin closes and the output is thrown
    /// away so the process (if it still runs) never blocks on it.
    pub fn abandon(&self) {
        self.close_stdin();
        self.stdout.abandon();
        self.stderr.abandon();
    }
}

/// Waits up to `timeout` for `file` to take more bytes.
fn wait_writable(file: &File, timeout: Duration) {
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLOUT)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    // An error or a timeout both end in the caller's next write attempt.
    let _ = poll(&mut fds, timeout);
}

/// Starts the pump of one output pipe.
fn pump(pipe: Option<impl Into<OwnedFd>>, out: &Arc<Output>, name: &str) -> io::Result<()> {
    let pipe = pipe.ok_or_else(|| io::Error::other("the exec helper has no output pipe"))?;
    spawn_pump(File::from(pipe.into()), Arc::clone(out), name)
}
