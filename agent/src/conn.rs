//! One accepted connection (Unix or vsock stream socket): framed messages,
//! timeouts, and noticing that the peer went away.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};
use podvm_proto::{write_message, FrameError, Response};

/// See the module documentation.
pub struct Conn {
    socket: File,
}

fn timeval(d: Option<Duration>) -> TimeVal {
    let micros = d.unwrap_or_default().as_micros();
    TimeVal::microseconds(i64::try_from(micros).unwrap_or(i64::MAX))
}

impl Conn {
    pub fn new(fd: OwnedFd) -> Self {
        Conn {
            socket: File::from(fd),
        }
    }

    /// Sets receive and send timeouts (`None`: block forever).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        setsockopt(&self.socket, sockopt::ReceiveTimeout, &timeval(read))?;
        setsockopt(&self.socket, sockopt::SendTimeout, &timeval(write))?;
        Ok(())
    }

    /// Sends one response frame.
    pub fn send(&mut self, response: &Response) -> Result<(), FrameError> {
        write_message(self, response)
    }

    /// Reads and drops up to `limit` bytes of input, for at most `time`.
    pub fn discard_input(&mut self, limit: usize, time: Duration) {
        let deadline = std::time::Instant::now() + time;
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < limit {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || self.set_timeouts(Some(left), None).is_err() {
                return;
            }
            match self.socket.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    }

    /// Whether the peer closed or reset the connection.
    pub fn peer_gone(&self) -> bool {
        let gone =
            PollFlags::from_bits_retain(libc::POLLRDHUP) | PollFlags::POLLHUP | PollFlags::POLLERR;
        let mut fds = [PollFd::new(self.socket.as_fd(), gone)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => false,
            Ok(_) => fds[0].revents().is_some_and(|r| r.intersects(gone)),
            Err(_) => true,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket.read(buf)
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
