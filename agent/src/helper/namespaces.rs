//! Namespaces: entering those an OCI spec lists (joined by path, or new),
//! and joining a running container's through `/proc/<pid>/ns/*`.

use std::fs::File;

use anyhow::Context;
use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// Everything an exec joins: the container's IPC, UTS, network, PID,
/// cgroup and mount namespaces (mount last: it changes the root).
pub const CONTAINER: &[(&str, CloneFlags)] = &[
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// The clone flag of a namespace type.
pub fn flag(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Enters the namespaces of a container's spec: those with a path are
/// joined (all opened before any is joined), then the others are created
/// (a new PID namespace takes effect for the children). Returns the flags
/// of the new ones.
pub fn enter(namespaces: &[LinuxNamespace]) -> anyhow::Result<CloneFlags> {
    let mut opened = Vec::new();
    let mut new = CloneFlags::empty();
    for ns in namespaces {
        match ns.path() {
            Some(path) => {
                let file = File::open(path).with_context(|| {
                    format!("opening the {} namespace {}", ns.typ(), path.display())
                })?;
                opened.push((file, ns));
            }
            None => new |= flag(ns.typ()),
        }
    }
    for (file, ns) in opened {
        setns(&file, flag(ns.typ())).with_context(|| {
            format!(
                "joining the {} namespace {}",
                ns.typ(),
                ns.path()
                    .as_deref()
                    .unwrap_or_else(|| std::path::Path::new("?"))
                    .display()
            )
        })?;
    }
    if !new.is_empty() {
        unshare(new).with_context(|| format!("creating namespaces {new:?}"))?;
    }
    Ok(new)
}

/// Joins the listed namespaces of `pid`; all are opened before any is
/// joined. A kind the kernel does not have (no `/proc/<pid>/ns/<kind>`) is
/// skipped.
pub fn join(pid: i32, kinds: &[(&str, CloneFlags)]) -> anyhow::Result<()> {
    let mut opened = Vec::with_capacity(kinds.len());
    for (name, flag) in kinds {
        let path = format!("/proc/{pid}/ns/{name}");
        match File::open(&path) {
            Ok(file) => opened.push((file, *flag, name)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && *name == "cgroup" => {}
            Err(e) => return Err(e).with_context(|| format!("opening {path}")),
        }
    }
    for (file, flag, name) in opened {
        setns(&file, flag).with_context(|| format!("joining the {name} namespace of {pid}"))?;
    }
    Ok(())
}
