//! Scratch disks: the backing of a disk `emptyDir` (`medium: ""`). Each is
//! a sparse file in the pod's VM folder, formatted ext4 on the host with
//! `mkfs.ext4` and attached as a writable virtio-blk disk; the agent mounts
//! it by serial. The file costs nothing until the pod writes, and goes
//! away with the pod's folder.
//!
//! With a `sizeLimit` L the file is `max(2·L, L + 64 MiB)`, so that usage
//! past L can happen and be seen (the agent evicts the pod then, as kubelet
//! does, rather than the filesystem failing writes at L); without one it is
//! 10 GiB.

use std::fs::OpenOptions;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::hypervisor::DiskConfig;

/// Size of a scratch disk without `sizeLimit`.
pub const DEFAULT_SIZE: u64 = 10 << 30;
/// Room past `sizeLimit`, at least.
const HEADROOM: u64 = 64 << 20;
/// Sizes are rounded up to whole MiB.
const ALIGN: u64 = 1 << 20;
/// Where `mkfs.ext4` lives when `PATH` lacks the sbin folders.
const SBIN_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/local/sbin"];
const MKFS: &str = "mkfs.ext4";

/// One scratch disk of a pod, as the launch plan carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchDisk {
    /// The virtio-blk serial the agent looks for (≤ 20 bytes).
    pub serial: String,
    /// Size of the (sparse) file.
    pub size_bytes: u64,
}

impl ScratchDisk {
    /// The `index`-th disk emptyDir of a pod, sized for `size_limit`.
    pub fn new(index: usize, size_limit: Option<u64>) -> Self {
        ScratchDisk {
            serial: format!("podvm-ed{index}"),
            size_bytes: file_size(size_limit),
        }
    }

    /// The file backing this disk in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.ext4", self.serial))
    }
}

/// Why a scratch disk could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("cannot create the scratch disk {path} ({size} bytes): {source}")]
    Create {
        path: PathBuf,
        size: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{MKFS} is not installed (looked in PATH and {}); a disk emptyDir needs it: install e2fsprogs", SBIN_DIRS.join(", "))]
    MkfsMissing,
    #[error("cannot run {mkfs}: {source}")]
    MkfsSpawn {
        mkfs: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{MKFS} failed on {path} ({status}): {stderr}")]
    MkfsFailed {
        path: PathBuf,
        status: std::process::ExitStatus,
        stderr: String,
    },
}

/// The file size for a disk emptyDir with this `sizeLimit`.
pub fn file_size(size_limit: Option<u64>) -> u64 {
    let size = match size_limit {
        None => DEFAULT_SIZE,
        Some(limit) => limit.saturating_mul(2).max(limit.saturating_add(HEADROOM)),
    };
    size.div_ceil(ALIGN)
        .checked_mul(ALIGN)
        .unwrap_or(u64::MAX / ALIGN * ALIGN)
}

/// The `mkfs.ext4` scratch disks are formatted with; `apply` asks first,
/// so that a host without it refuses the pod before anything starts.
pub fn require_mkfs() -> Result<PathBuf, ScratchError> {
    find_mkfs().ok_or(ScratchError::MkfsMissing)
}

/// Creates and formats `disk` in `dir` (replacing a file left by a boot
/// that did not finish) and returns the VM disk for it.
pub fn prepare(dir: &Path, disk: &ScratchDisk) -> Result<DiskConfig, ScratchError> {
    let mkfs = require_mkfs()?;
    let path = disk.path_in(dir);
    create_sparse(&path, disk.size_bytes)?;
    format_ext4(&mkfs, &path)?;
    Ok(DiskConfig {
        path,
        read_only: false,
        serial: disk.serial.clone(),
    })
}

/// A file of `size` bytes with no blocks allocated.
fn create_sparse(path: &Path, size: u64) -> Result<(), ScratchError> {
    let err = |source| ScratchError::Create {
        path: path.to_path_buf(),
        size,
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    file.set_len(size).map_err(err)
}

/// `mkfs.ext4` with lazy inode-table and journal initialisation, so that
/// the sparse file stays small, and no blocks reserved for root.
fn format_ext4(mkfs: &Path, path: &Path) -> Result<(), ScratchError> {
    let out = Command::new(mkfs)
        .args([
            "-F",
            "-q",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0",
        ])
        .arg(path)
        .output()
        .map_err(|source| ScratchError::MkfsSpawn {
            mkfs: mkfs.to_path_buf(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ScratchError::MkfsFailed {
            path: path.to_path_buf(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// `mkfs.ext4` in `PATH`, else in the usual sbin folders.
fn find_mkfs() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(MKFS))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn sizes_leave_room_past_the_limit() {
        assert_eq!(file_size(None), 10 << 30);
        // Small limits get 64 MiB of headroom, large ones double.
        assert_eq!(file_size(Some(1)), (64 << 20) + (1 << 20));
        assert_eq!(file_size(Some(16 << 20)), 80 << 20);
        assert_eq!(file_size(Some(1 << 30)), 2 << 30);
        assert_eq!(file_size(Some(100 << 20)), 200 << 20);
        assert_eq!(file_size(Some(u64::MAX)) % ALIGN, 0, "saturates, aligned");
    }

    #[test]
    fn serials_fit_virtio_blk() {
        // "podvm-ed" leaves 12 digits: far more disks than a VM has slots.
        let d = ScratchDisk::new(999_999_999_999, Some(1 << 20));
        assert!(d.serial.len() <= 20, "{}", d.serial);
        assert_eq!(ScratchDisk::new(0, None).serial, "podvm-ed0");
    }

    #[test]
    fn the_file_is_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ext4");
        create_sparse(&path, 10 << 30).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), 10 << 30);
        assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
        // A leftover file is replaced, not grown.
        create_sparse(&path, 1 << 20).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20);
    }

    #[test]
    fn a_scratch_disk_is_a_small_sparse_ext4_file() {
        if find_mkfs().is_none() {
            podvm_testsupport::skip(
                "a_scratch_disk_is_a_small_sparse_ext4_file",
                "mkfs.ext4 is not installed (e2fsprogs)",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let disk = ScratchDisk::new(0, None);
        let started = std::time::Instant::now();
        let cfg = prepare(dir.path(), &disk).unwrap();
        eprintln!(
            "formatting a 10 GiB scratch disk took {:?}",
            started.elapsed()
        );
        assert_eq!(cfg.serial, "podvm-ed0");
        assert!(!cfg.read_only);
        assert_eq!(cfg.path, dir.path().join("podvm-ed0.ext4"));
        let meta = std::fs::metadata(&cfg.path).unwrap();
        assert_eq!(meta.len(), DEFAULT_SIZE);
        assert!(
            meta.blocks() * 512 < 64 << 20,
            "lazy init keeps it sparse: {} KiB allocated",
            meta.blocks() / 2
        );
        let dumpe2fs = SBIN_DIRS
            .iter()
            .map(|d| Path::new(d).join("dumpe2fs"))
            .find(|p| p.exists());
        let Some(dumpe2fs) = dumpe2fs else {
            podvm_testsupport::skip(
                "a_scratch_disk_is_a_small_sparse_ext4_file (its ext4 check)",
                "dumpe2fs is not installed (e2fsprogs)",
            );
            return;
        };
        let out = Command::new(dumpe2fs)
            .arg("-h")
            .arg(&cfg.path)
            .output()
            .unwrap();
        let header = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{header}");
        assert!(
            header.contains("Filesystem magic number:  0xEF53"),
            "{header}"
        );
        assert!(header.contains("extent"), "ext4 features: {header}");
        assert!(header.contains("Reserved block count:     0"), "{header}");
    }

    #[test]
    fn a_failing_mkfs_is_reported_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mkfs) = find_mkfs() else {
            podvm_testsupport::skip(
                "a_failing_mkfs_is_reported_with_its_output",
                "mkfs.ext4 is not installed (e2fsprogs)",
            );
            return;
        };
        // Too small for ext4.
        let path = dir.path().join("tiny.ext4");
        create_sparse(&path, 4096).unwrap();
        match format_ext4(&mkfs, &path) {
            Err(ScratchError::MkfsFailed { stderr, .. }) => assert!(!stderr.is_empty()),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
