//! The exec helper (`__podvm_exec`): joins a running container's cgroup and
//! namespaces, forks (to be inside its PID namespace), and the child becomes
//! the requested process: the container's spec process with the exec's
//! argv (its environment, working directory, user, capabilities, limits). Stdio is the
//! agent's pipes, or a terminal (then the process leads a new session with
//! it as controlling terminal). It reports the process's PID on its status pipe (one
//! [`ShimReport::Pid`] line), so the agent can signal it directly. Exits
//! with the process's code: 127 when the executable is not found, 126 when
//! it cannot be run, 128+N when killed by signal N.

use std::io::Write;

use anyhow::Context;
use nix::unistd::{fork, ForkResult};

use super::exe::become_process;
use super::supervise::{block_signals, reset_in_child, supervise};
use super::{namespaces, read_config};
use crate::container::config::{ExecConfig, ShimReport};
use crate::spawn::{inherited_fd, HelperFd};

/// Entry point of the subcommand; returns the process exit code.
pub fn main() -> i32 {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("podvm-agent exec: {e:#}");
            126
        }
    }
}

fn run() -> anyhow::Result<i32> {
    let cfg: ExecConfig = read_config()?;
    let status = inherited_fd(HelperFd::Status).context("no status descriptor")?;
    if let Some(cgroup) = &cfg.cgroup {
        cgroup.join(std::process::id())?;
    }
    namespaces::join(cfg.pid, namespaces::CONTAINER)?;
    block_signals().context("blocking signals")?;
    // SAFETY: the helper is single-threaded (a fresh process that started no
    // threads), so the child may run arbitrary code after fork.
    match unsafe { fork() }.context("forking")? {
        ForkResult::Child => {
            drop(status);
            reset_in_child();
            if cfg.tty {
                if let Err(e) = take_terminal() {
                    eprintln!("podvm-agent exec: taking the terminal: {e}");
                    std::process::exit(126);
                }
            }
            let failure = become_process(&cfg.process);
            eprintln!("{}", failure.message);
            std::process::exit(if failure.not_found { 127 } else { 126 })
        }
        ForkResult::Parent { child } => {
            let report = ShimReport::Pid {
                pid: child.as_raw(),
            };
            let mut status = status;
            if let Ok(mut line) = serde_json::to_vec(&report) {
                line.push(b'\n');
                let _ = status.write_all(&line);
            }
            // The agent reads that one line, then end of file.
            drop(status);
            Ok(supervise(child).0)
        }
    }
}

/// In the child: a new session whose controlling terminal is stdin.
fn take_terminal() -> nix::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal the terminal
    // from another session); no memory is passed.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
