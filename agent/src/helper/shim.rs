//! The container launcher (`__podvm_launch`): joins the sandbox's IPC, UTS
//! and network namespaces, unshares mount and PID namespaces, forks the
//! container's PID 1 and stays as its parent, forwarding signals and
//! reporting on fd 4 (JSON lines, see [`ShimReport`]): the PID, whether the
//! exec worked, and finally how PID 1 ended. Exits with PID 1's exit code
//! (128+N if killed by signal N).

use std::fs::File;
use std::io::{Read, Write};

use anyhow::Context;
use nix::fcntl::OFlag;
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{fork, pipe2, ForkResult};

use super::supervise::{block_signals, supervise};
use super::{container_init, namespaces, read_config};
use crate::container::config::{LaunchConfig, ShimReport};
use crate::spawn::{inherited_fd, STATUS_FD};

/// Exit code when the container could not be started.
const START_FAILED: i32 = 128;

fn report(out: &mut File, msg: &ShimReport) {
    if let Ok(mut line) = serde_json::to_vec(msg) {
        line.push(b'\n');
        let _ = out.write_all(&line);
    }
}

/// Entry point of the subcommand; returns the process exit code.
pub fn main() -> i32 {
    let mut status = match inherited_fd(STATUS_FD) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("podvm-agent launcher: no status descriptor: {e}");
            return START_FAILED;
        }
    };
    match run(&mut status) {
        Ok(code) => code,
        Err(e) => {
            report(
                &mut status,
                &ShimReport::Error {
                    message: format!("{e:#}"),
                },
            );
            START_FAILED
        }
    }
}

fn run(status: &mut File) -> anyhow::Result<i32> {
    let cfg: LaunchConfig = read_config()?;
    if let Some(cgroup) = &cfg.cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string())
            .with_context(|| format!("joining cgroup {}", cgroup.display()))?;
    }
    namespaces::join(cfg.sandbox_pid, namespaces::SANDBOX)?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
        .context("unsharing mount and PID namespaces")?;
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).context("creating the error pipe")?;
    block_signals().context("blocking signals")?;
    // SAFETY: the launcher is single-threaded (a fresh process that started
    // no threads), so the child may run arbitrary code after fork.
    match unsafe { fork() }.context("forking the container's PID 1")? {
        ForkResult::Child => {
            drop(err_read);
            container_init::run(&cfg, File::from(err_write))
        }
        ForkResult::Parent { child } => {
            drop(err_write);
            report(
                status,
                &ShimReport::Pid {
                    pid: child.as_raw(),
                },
            );
            let mut message = String::new();
            let _ = File::from(err_read)
                .take(64 * 1024)
                .read_to_string(&mut message);
            if message.is_empty() {
                report(status, &ShimReport::Started);
            } else {
                report(status, &ShimReport::Error { message });
            }
            let (code, signal) = supervise(child);
            report(status, &ShimReport::Exited { code, signal });
            Ok(code)
        }
    }
}
