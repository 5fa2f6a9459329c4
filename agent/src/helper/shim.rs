//! The container launcher (`__podvm_launch`), podvm's runc: it reads the
//! container's OCI spec from its bundle (the [`LaunchRequest`] on its configuration pipe
//! says where, and brings the overlay and the cgroup), joins the cgroup,
//! enters the spec's namespaces, forks the container's PID 1 and stays as
//! its parent, forwarding signals and reporting on its status pipe (JSON lines, see
//! [`ShimReport`]): the PID, whether the exec worked, and finally how PID 1
//! ended. Exits with PID 1's exit code (128+N if killed by signal N).

use std::fs::File;
use std::io::{Read, Write};

use anyhow::Context;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{fork, pipe2, ForkResult};

use super::container_init::{self, InitConfig};
use super::mounts::MountContext;
use super::supervise::{block_signals, supervise};
use super::{namespaces, read_config};
use crate::container::config::{LaunchRequest, ShimReport};
use crate::oci::bundle;
use crate::spawn::{inherited_fd, HelperFd};

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
    let mut status = match inherited_fd(HelperFd::Status) {
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
    let req: LaunchRequest = read_config()?;
    let spec = bundle::read(&req.bundle).context("reading the container's spec")?;
    let process = spec.process().as_ref().context("the spec has no process")?;
    let root = bundle::root_path(&req.bundle, &spec);
    if let Some(cgroup) = &req.cgroup {
        cgroup.join(std::process::id())?;
    }
    let listed = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let created = namespaces::enter(&listed)?;
    if !created.contains(CloneFlags::CLONE_NEWNS) {
        anyhow::bail!("{}: the spec has no new mount namespace", req.name);
    }
    let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).context("creating the error pipe")?;
    block_signals().context("blocking signals")?;
    // SAFETY: the launcher is single-threaded (a fresh process that started
    // no threads), so the child may run arbitrary code after fork.
    match unsafe { fork() }.context("forking the container's PID 1")? {
        ForkResult::Child => {
            drop(err_read);
            let init = InitConfig {
                spec: &spec,
                process,
                overlay: req.overlay.as_ref(),
                mounts: MountContext {
                    root: &root,
                    cgroup: req.cgroup.as_ref(),
                    cgroupns: created.contains(CloneFlags::CLONE_NEWCGROUP),
                },
            };
            container_init::run(&init, File::from(err_write))
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
