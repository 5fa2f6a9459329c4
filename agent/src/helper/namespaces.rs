//! Joining another process's namespaces through `/proc/<pid>/ns/*`.

use std::fs::File;

use anyhow::Context;
use nix::sched::{setns, CloneFlags};

/// The namespaces of a pod's sandbox that containers share.
pub const SANDBOX: &[(&str, CloneFlags)] = &[
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
];

/// Everything an exec joins: the sandbox's plus the container's PID and mount
/// namespaces (mount last: it changes the root).
pub const CONTAINER: &[(&str, CloneFlags)] = &[
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Joins the listed namespaces of `pid`; all are opened before any is joined.
pub fn join(pid: i32, kinds: &[(&str, CloneFlags)]) -> anyhow::Result<()> {
    let mut opened = Vec::with_capacity(kinds.len());
    for (name, flag) in kinds {
        let path = format!("/proc/{pid}/ns/{name}");
        let file = File::open(&path).with_context(|| format!("opening {path}"))?;
        opened.push((file, *flag, name));
    }
    for (file, flag, name) in opened {
        setns(&file, flag).with_context(|| format!("joining the {name} namespace of {pid}"))?;
    }
    Ok(())
}
