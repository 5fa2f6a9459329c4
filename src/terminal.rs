//! The host terminal for `podvm exec -t`: raw mode while the remote
//! process owns the terminal (restored on drop, so on every way out of the
//! command), its window size, and a watcher that reports every resize.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc;
use std::thread;

use nix::sys::termios::{self, SetArg, Termios};
use signal_hook::consts::SIGWINCH;
use signal_hook::iterator::Signals;

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, libc::winsize);

/// The size of the terminal on `fd`; `None` when it is not a terminal.
pub fn window_size(fd: BorrowedFd<'_>) -> Option<WindowSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass; the
    // descriptor is borrowed for the call.
    unsafe { tiocgwinsz(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut ws) }.ok()?;
    Some(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    termios::tcgetattr(fd).is_ok()
}

/// Raw mode on a terminal until dropped: no echo, no line editing, no
/// signals from keys (Ctrl-C and Ctrl-D travel as bytes to the remote
/// terminal, whose line discipline acts on them), output unprocessed.
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    pub fn enter(fd: BorrowedFd<'fd>) -> io::Result<Self> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        // Output already written is drained first, then the old mode is back.
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Sends the window size of `fd` to the returned receiver at every
/// SIGWINCH, for as long as the receiver lives.
pub fn watch_resizes(fd: BorrowedFd<'static>) -> io::Result<mpsc::Receiver<WindowSize>> {
    let mut signals = Signals::new([SIGWINCH])?;
    let handle = signals.handle();
    let (tx, rx) = mpsc::channel();
    thread::Builder::new().name("winch".into()).spawn(move || {
        for _ in signals.forever() {
            let Some(size) = window_size(fd) else {
                continue;
            };
            if tx.send(size).is_err() {
                break;
            }
        }
        handle.close();
    })?;
    Ok(rx)
}
