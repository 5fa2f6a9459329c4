//! A one-shot deadline on a non-blocking timerfd, polled in the muxer's
//! epoll set, so that the vsock timeouts (a CONNECT line, a guest that
//! never answers a REQUEST, a close that is never acknowledged) fire on a
//! quiet device too, not only when some other event wakes the muxer.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::{Duration, Instant};

use vmm_sys_util::timerfd::TimerFd;

/// The shortest arming: a deadline already past fires at once.
const MIN_DELAY: Duration = Duration::from_millis(1);

/// The earliest pending deadline, armed on a timerfd.
pub struct Deadline {
    timer: TimerFd,
    at: Option<Instant>,
}

impl Deadline {
    /// A disarmed deadline.
    pub fn new() -> io::Result<Self> {
        // SAFETY: timerfd_create takes no pointers; the result is checked.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh timerfd this struct now owns alone.
        let timer = unsafe { TimerFd::from_raw_fd(fd) };
        Ok(Self { timer, at: None })
    }

    /// The fd to poll: readable once the deadline passed.
    pub fn fd(&self) -> RawFd {
        self.timer.as_raw_fd()
    }

    /// When the timer fires next, if armed.
    pub fn armed_at(&self) -> Option<Instant> {
        self.at
    }

    /// Makes the timer fire by `at`, unless it fires earlier already.
    pub fn schedule(&mut self, at: Instant) {
        if self.at.is_some_and(|armed| armed <= at) {
            return;
        }
        let delay = at.saturating_duration_since(Instant::now()).max(MIN_DELAY);
        match self.timer.reset(delay, None) {
            Ok(()) => self.at = Some(at),
            Err(e) => log::error!("vsock: cannot arm the timeout timer: {e}"),
        }
    }

    /// Consumes an expiry the poll reported and disarms; the caller
    /// schedules the next deadline. Never blocks: the fd is non-blocking,
    /// and an expiry already consumed (or cancelled by a re-arm) is fine.
    pub fn fired(&mut self) {
        if let Err(e) = self.timer.wait() {
            if e.errno() != libc::EAGAIN {
                log::warn!("vsock: reading the timeout timer: {e}");
            }
        }
        self.at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::test_driver::readable;

    #[test]
    fn fires_at_the_earliest_scheduled_deadline() {
        let mut d = Deadline::new().unwrap();
        assert!(!readable(d.fd(), 0));
        let now = Instant::now();
        d.schedule(now + Duration::from_secs(60));
        d.schedule(now + Duration::from_millis(20));
        // A later one does not postpone the earlier.
        d.schedule(now + Duration::from_secs(30));
        assert_eq!(d.armed_at(), Some(now + Duration::from_millis(20)));
        assert!(readable(d.fd(), 2000), "fired");
        assert!(now.elapsed() >= Duration::from_millis(20));
        d.fired();
        assert_eq!(d.armed_at(), None);
        assert!(!readable(d.fd(), 0), "consumed");
    }

    #[test]
    fn a_past_deadline_fires_at_once_and_a_spurious_read_does_not_block() {
        let mut d = Deadline::new().unwrap();
        d.fired();
        d.schedule(Instant::now() - Duration::from_secs(1));
        assert!(readable(d.fd(), 1000));
        d.fired();
        d.fired();
    }
}
