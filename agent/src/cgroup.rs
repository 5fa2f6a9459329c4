//! cgroup v2 placement: each container gets `/sys/fs/cgroup/podvm/<name>`.
//! Used only where `/sys/fs/cgroup` is a writable cgroup2 mount (the guest);
//! elsewhere (a v1/hybrid host in host mode) cgroups are skipped.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use crate::console::say;

/// Controllers delegated to the containers, where the kernel has them.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// The pod's cgroup subtree.
#[derive(Debug, Clone)]
pub struct Cgroups {
    base: PathBuf,
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

impl Cgroups {
    /// Sets up `<mount>/podvm` if `mount` is a writable cgroup2 hierarchy.
    pub fn detect(mount: &Path) -> Option<Cgroups> {
        let is_v2 = statfs(mount).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
        if !is_v2 {
            say!(
                "{} is not a cgroup2 mount: containers get no cgroups",
                mount.display()
            );
            return None;
        }
        let base = mount.join("podvm");
        if let Err(e) = fs::create_dir_all(&base) {
            say!(
                "cannot create {}: {e}; containers get no cgroups",
                base.display()
            );
            return None;
        }
        enable_controllers(&base);
        Some(Cgroups { base })
    }

    /// Creates (or reuses) the cgroup of a container.
    pub fn create(&self, container: &str) -> io::Result<PathBuf> {
        let dir = self.base.join(container);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir),
            Err(e) => Err(e),
        }
    }

    /// Removes a container's cgroup (it must be empty).
    pub fn remove(&self, container: &str) {
        let _ = fs::remove_dir(self.base.join(container));
    }
}
