//! Starting helper copies of the agent binary (`/proc/self/exe <subcommand>`).
//!
//! Work that must happen in a fresh single-threaded process (joining
//! namespaces, unsharing, forking into a new PID namespace) runs in a helper.
//! The agent hands the helper its configuration as JSON on a pipe it writes
//! and closes and, for helpers that report progress, reads JSON lines from
//! a second pipe; the helper finds their numbers in its environment
//! ([`HelperFd`]). Stdio is set by the caller. No code runs between fork
//! and exec, so the standard library spawns with `posix_spawn`.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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

/// A descriptor the agent hands a helper besides its stdio. Its number is
/// in the helper's environment (see [`HelperFd::env`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperFd {
    /// The helper reads its JSON configuration from it (to EOF).
    Config,
    /// The helper writes its JSON-lines progress reports to it.
    Status,
}

impl HelperFd {
    /// The environment variable that carries its number.
    pub fn env(self) -> &'static str {
        match self {
            HelperFd::Config => "PODVM_HELPER_CONFIG_FD",
            HelperFd::Status => "PODVM_HELPER_STATUS_FD",
        }
    }
}

/// A started helper.
pub struct Helper {
    pub child: Child,
    pub exit: Arc<Exit>,
    /// The read end of the helper's status pipe, when asked for.
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

/// Spawns `cmd` with `config` readable on its [`HelperFd::Config`] and, if
/// `with_status`, a pipe on its [`HelperFd::Status`] whose read end is
/// returned.
///
/// The descriptors keep their numbers in the helper (named in its
/// environment) rather than being moved to fixed ones: moving them would
/// take code run between fork and exec, and with it the standard library
/// forks the whole agent (page tables and all) instead of using
/// `posix_spawn`, which costs milliseconds per exec probe. They are
/// inheritable only while the reaper's registry lock, which every spawn
/// of the agent holds, is held (`reaper::spawn_inheriting`).
pub fn spawn_helper(mut cmd: Command, config: &[u8], with_status: bool) -> io::Result<Helper> {
    let (config_read, config_write) = pipe2(OFlag::O_CLOEXEC)?;
    let (status_read, status_write): (Option<OwnedFd>, Option<OwnedFd>) = if with_status {
        let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let mut inherited = vec![config_read.as_raw_fd()];
    cmd.env(HelperFd::Config.env(), config_read.as_raw_fd().to_string());
    if let Some(fd) = &status_write {
        cmd.env(HelperFd::Status.env(), fd.as_raw_fd().to_string());
        inherited.push(fd.as_raw_fd());
    }
    let (child, exit) = reaper::spawn_inheriting(&mut cmd, &inherited)?;
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

/// In a helper: takes ownership of the descriptor the agent handed it as
/// `which`, after checking that it is open.
pub fn inherited_fd(which: HelperFd) -> io::Result<File> {
    let fd: RawFd = std::env::var(which.env())
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|fd| *fd > 2)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} does not name a descriptor", which.env()),
            )
        })?;
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
