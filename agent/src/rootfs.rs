//! Image root filesystems (the overlay lower layers) and the per-run overlay
//! directories of each container.
//!
//! A `BlockSerial` image is the block device whose `/sys/block/*/serial`
//! matches, mounted read-only once at `<run>/images/<serial>` and shared by
//! every container using it; a `Directory` image is used in place.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use podvm_proto::RootfsSource;

use crate::mountinfo::unmount_tree;

/// Why an image root filesystem is not available.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("image directory {0} is not an absolute path to a directory")]
    BadDirectory(PathBuf),
    #[error("invalid block device serial {0:?} or filesystem type {1:?}")]
    BadSource(String, String),
    #[error("no block device with serial {0:?}")]
    NoDevice(String),
    #[error("mounting image {serial:?} ({fstype}) from {device}: {source}")]
    Mount {
        serial: String,
        fstype: String,
        device: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("preparing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Image mounts of the pod.
pub struct Images {
    dir: PathBuf,
    sys_block: PathBuf,
    mounted: Mutex<HashMap<String, PathBuf>>,
}

fn safe_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s != "."
        && s != ".."
}

impl Images {
    /// `dir` is `<run>/images`.
    pub fn new(dir: PathBuf) -> Self {
        Images {
            dir,
            sys_block: PathBuf::from("/sys/block"),
            mounted: Mutex::new(HashMap::new()),
        }
    }

    /// The lower layer for `source`, mounting the image on first use.
    pub fn lower_dir(&self, source: &RootfsSource) -> Result<PathBuf, RootfsError> {
        match source {
            RootfsSource::Directory { path } => {
                if path.is_absolute() && path.is_dir() {
                    Ok(path.clone())
                } else {
                    Err(RootfsError::BadDirectory(path.clone()))
                }
            }
            RootfsSource::BlockSerial { serial, fstype } => self.mount_serial(serial, fstype),
        }
    }

    fn mount_serial(&self, serial: &str, fstype: &str) -> Result<PathBuf, RootfsError> {
        if !safe_token(serial) || !safe_token(fstype) {
            return Err(RootfsError::BadSource(serial.into(), fstype.into()));
        }
        let mut mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = mounted.get(serial) {
            return Ok(dir.clone());
        }
        let device = self.device_node(serial)?;
        let target = self.dir.join(serial);
        fs::create_dir_all(&target).map_err(io_err(&target))?;
        mount(
            Some(&device),
            &target,
            Some(fstype),
            MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
            None::<&str>,
        )
        .map_err(|source| RootfsError::Mount {
            serial: serial.into(),
            fstype: fstype.into(),
            device: device.clone(),
            source,
        })?;
        mounted.insert(serial.to_string(), target.clone());
        Ok(target)
    }

    fn device_node(&self, serial: &str) -> Result<PathBuf, RootfsError> {
        block_device_node(&self.sys_block, serial, &self.dir)
    }

    /// Unmounts every image.
    pub fn unmount_all(&self) {
        self.mounted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        unmount_tree(&self.dir);
    }
}

/// The name (e.g. `vdb`) of the block device whose serial is `serial`.
pub fn find_block_device(sys_block: &Path, serial: &str) -> Option<String> {
    let entries = fs::read_dir(sys_block).ok()?;
    entries.flatten().find_map(|entry| {
        let found = fs::read_to_string(entry.path().join("serial")).ok()?;
        (found.trim() == serial).then(|| entry.file_name().to_string_lossy().into_owned())
    })
}

/// `/dev/<name>` of the disk with this serial (found in `sys_block`); made
/// in `node_dir` from `<sys_block>/<name>/dev` when devtmpfs has no node
/// for it.
pub fn block_device_node(
    sys_block: &Path,
    serial: &str,
    node_dir: &Path,
) -> Result<PathBuf, RootfsError> {
    let name =
        find_block_device(sys_block, serial).ok_or_else(|| RootfsError::NoDevice(serial.into()))?;
    let node = Path::new("/dev").join(&name);
    if node.exists() {
        return Ok(node);
    }
    let numbers = sys_block.join(&name).join("dev");
    let text = fs::read_to_string(&numbers).map_err(io_err(&numbers))?;
    let (major, minor) = text
        .trim()
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        .ok_or_else(|| RootfsError::NoDevice(serial.into()))?;
    let node = node_dir.join(format!("{name}.dev"));
    if !node.exists() {
        mknod(
            &node,
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(major, minor),
        )
        .map_err(|e| RootfsError::Io {
            path: node.clone(),
            source: e.into(),
        })?;
    }
    Ok(node)
}

/// The overlay directories of one run of a container.
#[derive(Debug, Clone)]
pub struct RunLayers {
    pub base: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl RunLayers {
    /// Creates fresh `<containers>/<name>/<run>/{upper,work,rootfs}`.
    pub fn create(containers: &Path, name: &str, run: u32) -> Result<RunLayers, RootfsError> {
        let base = containers.join(name).join(run.to_string());
        if base.exists() {
            fs::remove_dir_all(&base).map_err(io_err(&base))?;
        }
        let layers = RunLayers {
            upper: base.join("upper"),
            work: base.join("work"),
            merged: base.join("rootfs"),
            base,
        };
        for dir in [&layers.upper, &layers.work, &layers.merged] {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        Ok(layers)
    }

    /// Deletes the run's directories (the overlay is gone with the
    /// container's mount namespace).
    pub fn remove(&self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_devices_by_serial() {
        let tmp = tempfile::tempdir().unwrap();
        for (name, serial) in [("vda", "root\n"), ("vdb", "img-1\n")] {
            fs::create_dir(tmp.path().join(name)).unwrap();
            fs::write(tmp.path().join(name).join("serial"), serial).unwrap();
        }
        fs::create_dir(tmp.path().join("loop0")).unwrap();
        assert_eq!(
            find_block_device(tmp.path(), "img-1").as_deref(),
            Some("vdb")
        );
        assert_eq!(find_block_device(tmp.path(), "nope"), None);
    }

    #[test]
    fn rejects_unsafe_sources() {
        let images = Images::new(PathBuf::from("/nonexistent"));
        for (serial, fstype) in [
            ("../x", "erofs"),
            ("", "erofs"),
            ("a", "ext4,ro"),
            ("a/b", "erofs"),
        ] {
            let src = RootfsSource::BlockSerial {
                serial: serial.into(),
                fstype: fstype.into(),
            };
            assert!(matches!(
                images.lower_dir(&src),
                Err(RootfsError::BadSource(..))
            ));
        }
        let rel = RootfsSource::Directory {
            path: "relative".into(),
        };
        assert!(images.lower_dir(&rel).is_err());
    }
}
