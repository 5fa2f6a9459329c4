//! `podvm exec NAME [-c C] [-i] [-t] -- CMD...`: run a command in a
//! container; its output is streamed and its exit code becomes ours. With
//! `-t` the command runs on a terminal and the host terminal is put in raw
//! mode until the command ends (restored on every way out), its size
//! forwarded at start and on every resize.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{connect_agent, load_pod, pick_container, Ctx};
use crate::cli::ExecArgs;
use crate::exec_session::{self, ExecRequest, Terminal};
use crate::terminal::{self, RawMode, WindowSize};

/// The size used when the host's terminal does not say (kubectl's too).
const DEFAULT_SIZE: WindowSize = WindowSize { rows: 24, cols: 80 };

/// Returns the command's exit code.
pub fn run(ctx: &Ctx, args: &ExecArgs) -> Result<i32> {
    let record = load_pod(ctx, &args.namespace, &args.name)?;
    let container = pick_container(&record.pod, args.container.as_deref(), true)?;
    let conn = connect_agent(&record, Duration::from_secs(10))?;
    // fd 0 stays open for the whole life of the process.
    // SAFETY: STDIN_FILENO is open from start to exit; the borrow never
    // outlives the process.
    let stdin_fd: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(libc::STDIN_FILENO) };
    let on_terminal = args.tty && terminal::is_terminal(stdin_fd);
    if args.tty && !on_terminal {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
    }
    let mut raw = None;
    let terminal = if on_terminal {
        let size = terminal::window_size(std::io::stdout().as_fd())
            .or_else(|| terminal::window_size(stdin_fd))
            .filter(|s| s.rows > 0 && s.cols > 0)
            .unwrap_or(DEFAULT_SIZE);
        let resizes = terminal::watch_resizes(stdin_fd).context("cannot watch for resizes")?;
        if args.stdin {
            raw = Some(RawMode::enter(stdin_fd).context("cannot put the terminal in raw mode")?);
        }
        Some(Terminal { size, resizes })
    } else {
        None
    };
    let req = ExecRequest {
        container: &container,
        argv: &args.command,
        stdin: args.stdin.then(std::io::stdin),
        stdout: std::io::stdout(),
        stderr: std::io::stderr(),
        terminal,
    };
    let code = exec_session::run(&conn, req);
    drop(raw);
    Ok(code?)
}
