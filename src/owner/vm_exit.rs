//! Noticing at once that a VM process ended, whether the owner started it
//! (its child) or took it over from an owner that died (not its child):
//! a pidfd (`pidfd_open`, Linux 5.3) becomes readable when the process
//! exits, and a thread blocked in `poll` on it reports the end.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::mpsc::Sender;
use std::thread;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::hypervisor::TrackedProcess;

/// How a VM process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmExit {
    /// Our child: its wait status.
    Exited(i32),
    Killed(i32),
    /// Not our child (taken over): only that it is gone.
    Gone,
}

impl std::fmt::Display for VmExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmExit::Exited(code) => write!(f, "exited with status {code}"),
            VmExit::Killed(sig) => match nix::sys::signal::Signal::try_from(*sig) {
                Ok(s) => write!(f, "was killed by {s}"),
                Err(_) => write!(f, "was killed by signal {sig}"),
            },
            VmExit::Gone => write!(
                f,
                "ended (it was not started by this owner, so its status is unknown)"
            ),
        }
    }
}

fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("pidfd_open");
    }
    let fd = i32::try_from(fd).context("pidfd out of range")?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Watches `process` on a thread; sends its end to `tx` once. Fails when
/// the process is already gone (or is not the one recorded).
pub fn watch(process: &TrackedProcess, tx: Sender<VmExit>) -> Result<()> {
    let pidfd = pidfd_open(process.pid)?;
    // The pidfd refers to whatever has this pid now: check it is ours.
    if !process.is_alive() {
        bail!("{} (pid {}) is not running", process.name, process.pid);
    }
    let pid = process.pid;
    thread::Builder::new()
        .name("vm-exit".into())
        .spawn(move || {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            loop {
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => break,
                }
            }
            let _ = tx.send(reap(pid));
        })
        .context("starting the VM watch thread")?;
    Ok(())
}

/// The wait status if `pid` is our child, else [`VmExit::Gone`].
fn reap(pid: i32) -> VmExit {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => VmExit::Exited(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => VmExit::Killed(sig as i32),
        _ => VmExit::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    #[test]
    fn a_killed_child_is_reported_with_its_signal() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("1000");
        let p = TrackedProcess::spawn("sleep", cmd, &dir.path().join("log")).unwrap();
        let (tx, rx) = channel();
        watch(&p, tx).unwrap();
        p.signal(nix::sys::signal::Signal::SIGKILL);
        // Last-resort limit only: the report comes as soon as the kernel
        // has the process dead.
        let end = rx.recv_timeout(Duration::from_secs(120)).unwrap();
        assert_eq!(end, VmExit::Killed(9));
        assert_eq!(end.to_string(), "was killed by SIGKILL");
        let (tx, _rx) = channel();
        assert!(watch(&p, tx).is_err(), "a dead process cannot be watched");
    }
}
