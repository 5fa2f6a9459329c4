//! The one place that waits for child processes.
//!
//! As PID 1 (and as a child subreaper in host mode) the agent inherits every
//! orphan, so a single thread reaps with `waitpid(-1)`. Children the agent
//! spawns itself are registered while the registry lock is held across the
//! fork, so the reaper can never collect one before it is known; their exit
//! is delivered through an [`Exit`] handle. Nothing else in the agent may
//! call `wait` on a child (that would race with this thread).

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::process::{Child, Command};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::console::say;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The shell convention: the exit code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        }
    }
}

/// The exit of one registered child, filled in by the reaper thread.
#[derive(Debug, Default)]
pub struct Exit {
    status: Mutex<Option<ExitStatus>>,
    done: Condvar,
}

impl Exit {
    /// Blocks until the child has exited.
    pub fn wait(&self) -> ExitStatus {
        let guard = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        let guard = self
            .done
            .wait_while(guard, |s| s.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        guard.unwrap_or(ExitStatus::Exited(0))
    }

    /// Waits up to `timeout`; `None` if the child is still running.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut guard = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        while guard.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            guard = self
                .done
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *guard
    }

    fn set(&self, status: ExitStatus) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = Some(status);
        self.done.notify_all();
    }
}

#[derive(Default)]
struct Registry {
    children: Mutex<HashMap<i32, Arc<Exit>>>,
    spawned: Condvar,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// Starts the reaper thread; call once, before spawning anything.
pub fn start() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(reap_forever)
        .map(|_| ())
}

/// Spawns `cmd` and registers the child; the returned [`Exit`] reports its end.
#[cfg(test)]
pub fn spawn(cmd: &mut Command) -> std::io::Result<(Child, Arc<Exit>)> {
    spawn_inheriting(cmd, &[])
}

/// [`spawn`], the child inheriting `fds` (close-on-exec descriptors of the
/// caller): they are made inheritable just before the spawn and
/// close-on-exec again right after, both under the registry lock that
/// every spawn holds, so no other child can inherit them.
pub fn spawn_inheriting(cmd: &mut Command, fds: &[RawFd]) -> std::io::Result<(Child, Arc<Exit>)> {
    let reg = registry();
    let mut children = reg.children.lock().unwrap_or_else(PoisonError::into_inner);
    for fd in fds {
        set_cloexec(*fd, false)?;
    }
    let spawned = cmd.spawn();
    for fd in fds {
        set_cloexec(*fd, true)?;
    }
    let child = spawned?;
    let exit = Arc::new(Exit::default());
    children.insert(child.id() as i32, Arc::clone(&exit));
    reg.spawned.notify_all();
    Ok((child, exit))
}

/// Sets or clears `FD_CLOEXEC` on `fd`.
fn set_cloexec(fd: RawFd, on: bool) -> std::io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD changes only the descriptor's flags; an invalid
    // descriptor is an error return, not undefined behaviour.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn reap_forever() {
    let reg = registry();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(pid, code)) => deliver(reg, pid, ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                deliver(reg, pid, ExitStatus::Signaled(sig as i32))
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                // Nothing to wait for: sleep until something is spawned (or a
                // while, for orphans that arrive unannounced).
                let children = reg.children.lock().unwrap_or_else(PoisonError::into_inner);
                if !children.is_empty() {
                    // Spawned after waitpid looked: look again.
                    continue;
                }
                let _ = reg
                    .spawned
                    .wait_timeout(children, Duration::from_millis(500))
                    .unwrap_or_else(PoisonError::into_inner);
            }
            Err(e) => {
                say!("waitpid failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn deliver(reg: &Registry, pid: Pid, status: ExitStatus) {
    let exit = reg
        .children
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&pid.as_raw());
    if let Some(exit) = exit {
        exit.set(status);
    }
}
