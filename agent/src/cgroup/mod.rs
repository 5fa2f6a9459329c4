//! Container cgroups: every container gets a cgroup of its own in the
//! agent's subtree, where its processes are placed ([`CgroupDir::join`]),
//! its usage is read ([`stats`]) and its limits are set ([`resources`]).
//!
//! Two layouts ([`layout`]): cgroup v2, one hierarchy (the guest: the
//! subtree is `/sys/fs/cgroup/podvm`), and cgroup v1, one hierarchy per
//! controller (a v1 or hybrid host in host mode: the `cpu`, `cpuacct`,
//! `memory` and `pids` hierarchies that are mounted, each with the subtree
//! below the agent's own cgroup there). Outside the guest the subtree is
//! named `podvm-<agent pid>`, so agents side by side never share one.

mod layout;
pub mod resources;
pub mod stats;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::console::say;
pub use layout::detect_layout;

/// Controllers delegated to the containers on cgroup v2, where the kernel
/// has them.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// The cgroup v1 hierarchies containers are placed in, where mounted.
pub const V1_CONTROLLERS: [&str; 4] = ["cpu", "cpuacct", "memory", "pids"];

/// Which cgroup interface a directory speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// One hierarchy's directory of a cgroup, with the controllers it carries
/// (v1: the hierarchy's; v2: what is enabled for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerDir {
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// A container's cgroup: one directory (v2) or one per hierarchy (v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupDir {
    pub version: CgroupVersion,
    pub dirs: Vec<ControllerDir>,
}

impl CgroupDir {
    /// Moves process `pid` into this cgroup, in every hierarchy.
    pub fn join(&self, pid: u32) -> io::Result<()> {
        for dir in &self.dirs {
            let procs = dir.path.join("cgroup.procs");
            fs::write(&procs, pid.to_string()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("joining cgroup {}: {e}", dir.path.display()),
                )
            })?;
        }
        Ok(())
    }

    /// The directory whose files control `controller`, if it is available
    /// to this cgroup.
    pub fn controller(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }

    /// The directory of the v2 hierarchy (or of the first v1 one).
    pub fn main_dir(&self) -> Option<&Path> {
        self.dirs.first().map(|d| d.path.as_path())
    }

    /// Removes the cgroup's directories (they must hold no process).
    pub fn remove(&self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(&dir.path);
        }
    }
}

/// One hierarchy of the agent's subtree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// v1: the hierarchy's controllers; v2: those the kernel has.
    pub controllers: Vec<String>,
    /// The agent's subtree in it.
    pub base: PathBuf,
    /// The subtree as the hierarchy's root sees it (`/podvm`, or
    /// `/<agent's cgroup>/podvm-<pid>` on v1).
    pub relative: PathBuf,
}

/// The agent's cgroup subtree.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: CgroupVersion,
    hierarchies: Vec<Hierarchy>,
}

/// Enables `CONTROLLERS` in `dir/cgroup.subtree_control`, one at a time so a
/// missing one does not stop the others.
pub fn enable_controllers(dir: &Path) {
    let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    for name in CONTROLLERS {
        if available.split_whitespace().any(|c| c == name) {
            if let Err(e) = fs::write(dir.join("cgroup.subtree_control"), format!("+{name}")) {
                say!(
                    "enabling the {name} controller in {} failed: {e}",
                    dir.display()
                );
            }
        }
    }
}

/// Removes the empty subtrees `podvm-<pid>` of agents that are gone (a
/// host-mode agent that was killed leaves its own behind).
fn remove_stale_subtrees(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("podvm-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            remove_tree(&entry.path());
        }
    }
}

/// Removes a subtree's child cgroups, then the subtree (what still holds
/// processes stays).
fn remove_tree(base: &Path) {
    if let Ok(entries) = fs::read_dir(base) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
    let _ = fs::remove_dir(base);
}

/// The subtree's name: `podvm` as the guest's PID 1, else per agent.
fn subtree_name() -> String {
    match std::process::id() {
        1 => "podvm".into(),
        pid => format!("podvm-{pid}"),
    }
}

impl Cgroups {
    /// Sets up the agent's subtree in the hierarchies mounted at `mount`
    /// (cgroup2 there, or cgroup v1 hierarchies below it); `None` when
    /// there are none it can use (containers then run without cgroups).
    pub fn detect(mount: &Path) -> Option<Cgroups> {
        let Some(layout) = detect_layout(mount) else {
            say!(
                "no usable cgroup hierarchy at {}: containers get no cgroups",
                mount.display()
            );
            return None;
        };
        let name = subtree_name();
        let mut hierarchies = Vec::new();
        for found in layout.hierarchies {
            let relative = found.own.join(&name);
            let base = found
                .mount
                .join(relative.strip_prefix("/").unwrap_or(&relative));
            if let Some(parent) = base.parent() {
                remove_stale_subtrees(parent);
            }
            if let Err(e) = fs::create_dir_all(&base) {
                say!("cannot create {}: {e}", base.display());
                continue;
            }
            if layout.version == CgroupVersion::V2 {
                enable_controllers(&base);
            }
            hierarchies.push(Hierarchy {
                controllers: found.controllers,
                base,
                relative,
            });
        }
        if hierarchies.is_empty() {
            say!("containers get no cgroups");
            return None;
        }
        Some(Cgroups {
            version: layout.version,
            hierarchies,
        })
    }

    /// Creates (or reuses) the cgroup named `name` (a pod container's name,
    /// or a CRI container's `cri_<id>`).
    pub fn create(&self, name: &str) -> io::Result<CgroupDir> {
        let mut dirs = Vec::with_capacity(self.hierarchies.len());
        for h in &self.hierarchies {
            let dir = h.base.join(name);
            // The subtree too, should it be gone (see `remove_stale_subtrees`).
            fs::create_dir_all(&dir)?;
            let controllers = match self.version {
                CgroupVersion::V1 => h.controllers.clone(),
                // What the parent enabled for its children.
                CgroupVersion::V2 => fs::read_to_string(dir.join("cgroup.controllers"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            };
            dirs.push(ControllerDir {
                controllers,
                path: dir,
            });
        }
        Ok(CgroupDir {
            version: self.version,
            dirs,
        })
    }

    /// The cgroup of `name` relative to the hierarchies' roots (the OCI
    /// spec's `linux.cgroupsPath`).
    pub fn relative_path(&self, name: &str) -> Option<PathBuf> {
        self.hierarchies.first().map(|h| h.relative.join(name))
    }

    /// Removes the cgroup named `name` (it must be empty).
    pub fn remove(&self, name: &str) {
        for h in &self.hierarchies {
            let _ = fs::remove_dir(h.base.join(name));
        }
    }

    /// Removes the agent's subtree (at shutdown, once its containers are
    /// gone; what is still in use stays).
    pub fn remove_subtree(&self) {
        for h in &self.hierarchies {
            remove_tree(&h.base);
        }
    }
}
