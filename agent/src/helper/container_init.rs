//! The container's PID 1 before it executes the container process: the
//! spec's mounts, root switch, hostname, working directory, read-only and
//! masked paths, a read-only root if asked, then
//! [`super::exe::become_process`]. A failure is written to the launcher's
//! error pipe (closed by a successful exec, because it is CLOEXEC) and the
//! process exits.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use oci_spec::runtime::{Process, Spec};

use super::exe::become_process;
use super::mounts::{enter_root, prepare_root, MountContext};
use super::paths::{make_readonly, mask, remount_readonly};
use super::supervise::reset_in_child;
use crate::container::config::Overlay;

/// Exit code of a container PID 1 that failed before exec.
const START_FAILED: i32 = 128;

/// What PID 1 sets up from.
pub struct InitConfig<'a> {
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub overlay: Option<&'a Overlay>,
    pub mounts: MountContext<'a>,
}

/// Runs in the forked child; never returns.
pub fn run(cfg: &InitConfig<'_>, mut errors: File) -> ! {
    reset_in_child();
    let message = match setup(cfg) {
        Ok(()) => become_process(cfg.process).message,
        Err(e) => format!("{e:#}"),
    };
    let _ = errors.write_all(message.as_bytes());
    std::process::exit(START_FAILED)
}

fn setup(cfg: &InitConfig<'_>) -> anyhow::Result<()> {
    // If the launcher dies, so does the container.
    prctl::set_pdeathsig(Signal::SIGKILL).context("setting the parent-death signal")?;
    nix::unistd::setsid().context("setsid")?;
    prepare_root(cfg.spec, cfg.overlay, &cfg.mounts)?;
    enter_root(cfg.mounts.root)?;
    if let Some(hostname) = cfg.spec.hostname() {
        nix::unistd::sethostname(hostname)
            .with_context(|| format!("setting the hostname {hostname:?}"))?;
    }
    // Like runc: a missing working directory is created (as root).
    let cwd = cfg.process.cwd();
    std::fs::create_dir_all(cwd)
        .with_context(|| format!("creating the working directory {}", cwd.display()))?;
    if let Some(linux) = cfg.spec.linux() {
        for path in linux.readonly_paths().iter().flatten() {
            make_readonly(Path::new(path))?;
        }
        for path in linux.masked_paths().iter().flatten() {
            mask(Path::new(path))?;
        }
    }
    if cfg.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        remount_readonly(Path::new("/"))?;
    }
    Ok(())
}
