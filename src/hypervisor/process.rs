//! Processes podvm starts for a VM (qemu, vhost-device-vsock, podvm-vmm):
//! started detached from the CLI, remembered by pid AND start time so a
//! later `podvm delete` never signals an unrelated process that reused the pid.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process started for a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedProcess {
    /// What it is ("qemu", "vhost-device-vsock").
    pub name: String,
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time: u64,
}

impl TrackedProcess {
    /// Starts `cmd` in its own process group with stdin closed and
    /// stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<TrackedProcess> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone().context("cannot duplicate log file")?;
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        let pid = i32::try_from(child.id()).context("pid out of range")?;
        let start_time = start_time_of(pid)
            .with_context(|| format!("{name} exited at once; see {}", log.display()))?;
        // The child is deliberately not waited for: it outlives this CLI
        // process and is reaped by init once it exits.
        drop(child);
        Ok(TrackedProcess {
            name: name.to_string(),
            pid,
            start_time,
        })
    }

    /// The running process `pid` (e.g. this one), remembered the same way.
    pub fn of_pid(name: &str, pid: u32) -> Result<TrackedProcess> {
        let pid = i32::try_from(pid).context("pid out of range")?;
        Ok(TrackedProcess {
            name: name.to_string(),
            pid,
            start_time: start_time_of(pid)?,
        })
    }

    /// Whether this very process (same pid and start time) still runs.
    pub fn is_alive(&self) -> bool {
        match stat_of(self.pid) {
            Some((state, start)) => start == self.start_time && state != 'Z' && state != 'X',
            None => false,
        }
    }

    /// Sends `sig` if the process is still the one we started.
    pub fn signal(&self, sig: Signal) {
        if self.is_alive() {
            let _ = kill(Pid::from_raw(self.pid), sig);
        }
    }

    /// Waits until the process is gone; false if it still runs at the deadline.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            reap_if_child(self.pid);
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// TERM, wait up to `grace`, then KILL and wait for it to go.
    pub fn terminate(&self, grace: Duration) {
        self.signal(Signal::SIGTERM);
        if !self.wait_gone(grace) {
            self.signal(Signal::SIGKILL);
            self.wait_gone(Duration::from_secs(5));
        }
    }
}

impl TrackedProcess {
    /// Reaps the process if it is our child and has ended (no zombie).
    pub fn reap_if_child(&self) {
        reap_if_child(self.pid);
    }
}

/// When the process is our own child (the CLI that started it is still
/// running), reap it so it does not linger as a zombie.
fn reap_if_child(pid: i32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
}

fn start_time_of(pid: i32) -> Result<u64> {
    stat_of(pid)
        .map(|(_, t)| t)
        .with_context(|| format!("process {pid} not found"))
}

/// (state, start time) from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; the
    // fields after the last ')' are plain.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come fields 4..; start time is field 22 overall,
    // i.e. the 20th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_and_terminates_a_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("100");
        let p = TrackedProcess::spawn("sleep", cmd, &dir.path().join("log")).unwrap();
        assert!(p.is_alive());
        let imposter = TrackedProcess {
            start_time: p.start_time + 1,
            ..p.clone()
        };
        assert!(
            !imposter.is_alive(),
            "a different start time is a different process"
        );
        p.terminate(Duration::from_secs(2));
        assert!(!p.is_alive());
    }
}
