//! The container's PID 1 before it executes the container process: mounts,
//! root switch, working directory, then [`super::exe::become_process`].
//! A failure is written to the launcher's error pipe (closed by a
//! successful exec, because it is CLOEXEC) and the process exits.

use std::fs::File;
use std::io::Write;

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::signal::Signal;

use super::exe::become_process;
use super::mounts::{enter_root, prepare_root};
use super::supervise::reset_in_child;
use crate::container::config::LaunchConfig;

/// Exit code of a container PID 1 that failed before exec.
const START_FAILED: i32 = 128;

/// Runs in the forked child; never returns.
pub fn run(cfg: &LaunchConfig, mut errors: File) -> ! {
    reset_in_child();
    let message = match setup(cfg) {
        Ok(()) => become_process(&cfg.process).message,
        Err(e) => format!("{e:#}"),
    };
    let _ = errors.write_all(message.as_bytes());
    std::process::exit(START_FAILED)
}

fn setup(cfg: &LaunchConfig) -> anyhow::Result<()> {
    // If the launcher dies, so does the container.
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    nix::unistd::setsid().context("setsid")?;
    prepare_root(cfg)?;
    enter_root(&cfg.merged)?;
    // Like runc: a missing working directory is created (as root).
    std::fs::create_dir_all(&cfg.process.cwd)
        .with_context(|| format!("creating the working directory {:?}", cfg.process.cwd))?;
    Ok(())
}
