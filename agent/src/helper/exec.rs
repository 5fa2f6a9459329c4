//! The exec helper (`__podvm_exec`): joins a running container's cgroup and
//! namespaces, forks (to be inside its PID namespace), and the child becomes
//! the requested process with the container's identity. Stdio is the
//! agent's pipes. Exits with the process's code: 127 when the executable is
//! not found, 126 when it cannot be run, 128+N when killed by signal N.

use anyhow::Context;
use nix::unistd::{fork, ForkResult};

use super::exe::become_process;
use super::supervise::{block_signals, reset_in_child, supervise};
use super::{namespaces, read_config};
use crate::container::config::ExecConfig;

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
    if let Some(cgroup) = &cfg.cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), std::process::id().to_string())
            .with_context(|| format!("joining cgroup {}", cgroup.display()))?;
    }
    namespaces::join(cfg.pid, namespaces::CONTAINER)?;
    block_signals().context("blocking signals")?;
    // SAFETY: the helper is single-threaded (a fresh process that started no
    // threads), so the child may run arbitrary code after fork.
    match unsafe { fork() }.context("forking")? {
        ForkResult::Child => {
            reset_in_child();
            let failure = become_process(&cfg.process);
            eprintln!("{}", failure.message);
            std::process::exit(if failure.not_found { 127 } else { 126 })
        }
        ForkResult::Parent { child } => Ok(supervise(child).0),
    }
}
