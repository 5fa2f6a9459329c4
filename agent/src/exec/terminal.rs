//! The terminal of an exec started with `tty`: a pseudo-terminal taken from
//! the container's own devpts instance (its `/dev/ptmx`, reached through
//! `/proc/<container pid>/root`), so inside the container the process's
//! terminal is a `/dev/pts/N` it can name. The slave side is opened from
//! the master (`TIOCGPTPEER`), never by path; the process gets it as
//! stdin, stdout and stderr and makes it its controlling terminal (see
//! `helper/exec.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// A window size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

impl WinSize {
    /// The size a terminal gets when the client names none.
    pub const DEFAULT: WinSize = WinSize { rows: 24, cols: 80 };
}

/// The two ends of a new terminal.
pub struct Pty {
    pub master: File,
    pub slave: OwnedFd,
}

/// Opens a terminal in the devpts instance of the container whose PID 1 is
/// `container_pid`, of size `size`.
pub fn open_in_container(container_pid: i32, size: WinSize) -> io::Result<Pty> {
    let ptmx = format!("/proc/{container_pid}/root/dev/ptmx");
    let master = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&ptmx)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points at
    // a live local; `master` is an open pty master.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags by value and returns a new
    // descriptor (or -1); no memory is passed.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl just returned this descriptor and nothing else
    // owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    resize(&master, size)?;
    Ok(Pty { master, slave })
}

/// Sets the terminal's window size; its foreground processes get SIGWINCH.
pub fn resize(master: &File, size: WinSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a `winsize` through the pointer, which points
    // at a live local of that type.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_terminal_in_our_own_devpts_has_its_size_and_carries_bytes() {
        // PID 1 of this test's "container" is the test process itself.
        let own = i32::try_from(std::process::id()).unwrap();
        let pty = match open_in_container(
            own,
            WinSize {
                rows: 30,
                cols: 100,
            },
        ) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                podvm_testsupport::skip("terminal unit test", "no /dev/ptmx here");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a `winsize` into the live local.
        let rc = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((rc, ws.ws_row, ws.ws_col), (0, 30, 100));
        resize(&pty.master, WinSize { rows: 5, cols: 7 }).unwrap();
        // SAFETY: as above.
        let rc = unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((rc, ws.ws_row, ws.ws_col), (0, 5, 7));
        let mut slave = File::from(pty.slave);
        slave.write_all(b"hi\n").unwrap();
        let mut got = [0u8; 4];
        let mut master = pty.master;
        master.read_exact(&mut got).unwrap();
        // The line discipline turns \n into \r\n.
        assert_eq!(&got, b"hi\r\n");
    }
}
