//! The agent's state directory (`/run/podvm` in the VM, `--run-dir` in host
//! mode): a private tmpfs holding image mounts, per-container overlay
//! layers and termination-message files, the pod's shared files and
//! volumes, and the container logs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::mountinfo::unmount_tree;

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// Creates the directory, mounts a private tmpfs on it and makes the
    /// standard subdirectories.
    pub fn setup(root: &Path) -> io::Result<RunDir> {
        fs::create_dir_all(root)?;
        let root = fs::canonicalize(root)?;
        mount(
            Some("tmpfs"),
            &root,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0711"),
        )?;
        mount(
            None::<&str>,
            &root,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        let dir = RunDir { root };
        for sub in [dir.images(), dir.containers(), dir.logs(), dir.sandbox()] {
            fs::create_dir_all(sub)?;
        }
        Ok(dir)
    }

    /// Unmounts everything below the directory, then the tmpfs itself.
    pub fn teardown(&self) {
        unmount_tree(&self.root);
    }

    /// Where read-only image filesystems are mounted, one per serial.
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Per-container overlay layers.
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// CRI log files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The pod's hosts/hostname/resolv.conf files, its /dev/shm and its
    /// volumes.
    pub fn sandbox(&self) -> PathBuf {
        self.root.join("sandbox")
    }

    /// The termination-message file of the current run of `container`.
    pub fn termination_log(&self, container: &str) -> PathBuf {
        crate::volume::termination::termination_log_path(&self.containers(), container)
    }

    /// The folder of one container's logs: one file per run
    /// (`<run>.log`, as kubelet's `<restartCount>.log`).
    pub fn container_logs(&self, container: &str) -> PathBuf {
        self.logs().join(container)
    }
}
