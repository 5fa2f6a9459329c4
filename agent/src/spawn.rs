//! Starting helper copies of the agent binary (`/proc/self/exe <subcommand>`).
//!
//! Work that must happen in a fresh single-threaded process (joining
//! namespaces, unsharing, forking into a new PID namespace) runs in a helper.
//! The agent hands the helper its configuration as JSON on fd 3 (a pipe it
//! writes and closes) and, for helpers that report progress, reads JSON lines
//! from fd 4. Stdio is set by the caller.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::reaper::{self, Exit};

/// Subcommand of the sandbox holder ("pause") process.
pub const PAUSE: &str = "__podvm_pause";
/// Subcommand of the per-container launcher.
pub const LAUNCH: &str = "__podvm_launch";
/// Subcommand of the exec helper.
pub const EXEC: &str = "__podvm_exec";

/// The descriptor a helper reads its JSON configuration from.
pub const CONFIG_FD: RawFd = 3;
/// The descriptor a helper writes its JSON-lines progress reports to.
pub const STATUS_FD: RawFd = 4;

/// A started helper.
pub struct Helper {
    pub child: Child,
    pub exit: Arc<Exit>,
    /// The read end of the helper's fd 4, when asked for.
    pub status: Option<File>,
}

/// A `Command` for `/proc/self/exe <subcommand>`.
pub fn helper_command(subcommand: &str) -> Command {
    let mut cmd = Command::new(helper_program());
    cmd.arg(subcommand);
    cmd
}

/// The agent's own binary.
#[cfg(not(test))]
fn helper_program() -> std::path::PathBuf {
    "/proc/self/exe".into()
}

/// In unit tests this process is the test harness: the helpers are the
/// agent binary built beside it (see `pod::testing`).
#[cfg(test)]
fn helper_program() -> std::path::PathBuf {
    crate::pod::testing::agent_binary()
}

/// Spawns `cmd` with `config` readable on fd 3 and, if `with_status`, a pipe
/// on fd 4 whose read end is returned.
pub fn spawn_helper(mut cmd: Command, config: &[u8], with_status: bool) -> io::Result<Helper> {
    let (config_read, config_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (status_read, status_write): (Option<OwnedFd>, Option<OwnedFd>) = if with_status {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let config_raw = config_read.as_raw_fd();
    let status_raw = status_write.as_ref().map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and only
    // calls async-signal-safe functions (fcntl, dup2) on descriptors that
    // stay open in the parent until `spawn` returns; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || place_fds(config_raw, status_raw));
    }
    let (child, exit) = reaper::spawn(&mut cmd)?;
    drop(config_read);
    drop(status_write);
    let mut config_write = File::from(config_write);
    // A helper that died early shows up through its exit; the caller learns
    // about it there, so a broken pipe here is not fatal on its own.
    if let Err(e) = config_write.write_all(config) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(e);
        }
    }
    drop(config_write);
    Ok(Helper {
        child,
        exit,
        status: status_read.map(File::from),
    })
}

/// In the child: puts `config` on fd 3 and `status` (if >= 0) on fd 4.
/// Sources are first moved above 10 so one `dup2` cannot clobber the other.
fn place_fds(config: RawFd, status: RawFd) -> io::Result<()> {
    let pairs = [(config, CONFIG_FD), (status, STATUS_FD)];
    let mut moved = [-1; 2];
    for (slot, (src, _)) in moved.iter_mut().zip(pairs) {
        if src < 0 {
            continue;
        }
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own; no memory is touched.
        let fd = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 10) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        *slot = fd;
    }
    for (tmp, (_, dst)) in moved.into_iter().zip(pairs) {
        if tmp < 0 {
            continue;
        }
        // SAFETY: dup2 between two descriptor numbers; it clears CLOEXEC on
        // `dst`, which is what lets the helper inherit it.
        if unsafe { libc::dup2(tmp, dst) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// In a helper: takes ownership of an inherited descriptor after checking
/// that it is open.
pub fn inherited_fd(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_GETFD only queries the descriptor flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above) and, by the contract
    // with the agent, belongs to this helper alone; it is set CLOEXEC so it
    // does not leak into anything the helper executes.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        Ok(<File as std::os::fd::FromRawFd>::from_raw_fd(fd))
    }
}
