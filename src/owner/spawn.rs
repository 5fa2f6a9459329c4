//! Starting a pod's owner: this same `podvm` binary as `podvm __owner`, in
//! a session of its own (no controlling terminal, not killed with the
//! command that started it), output appended to `<pod>/owner.log`.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

/// File name of the owner's log in the pod's folder.
pub const OWNER_LOG: &str = "owner.log";

/// Starts the owner of `namespace/name` (it exits at once if the pod
/// already has one). Not waited for: it outlives the caller.
pub fn start_owner(state_root: &Path, namespace: &str, name: &str, pod_dir: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the podvm executable")?;
    let log_path = pod_dir.join(OWNER_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let err = log.try_clone().context("cannot duplicate the owner log")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--state-dir")
        .arg(state_root)
        .args(["__owner", "--namespace", namespace, "--name", name])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let child = cmd.spawn().context("cannot start the pod's owner")?;
    // Reaped by init once this command exits; `delete` reaps it sooner
    // when it is still our child.
    drop(child);
    Ok(())
}
