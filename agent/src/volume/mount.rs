//! Setting up one `emptyDir`, as kubelet's emptyDir plugin does: a
//! directory of mode 0777 (`medium: ""`), or a tmpfs of `size=<sizeLimit>`
//! whose root keeps tmpfs's 1777 (`medium: Memory`). In the microVM a disk
//! emptyDir is the ext4 scratch disk the host formatted and attached with
//! the volume's serial, mounted `nosuid,nodev`, its root made 0777 and its
//! empty `lost+found` removed so that the volume starts empty.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::VolumeError;
use crate::rootfs::block_device_node;

/// kubelet's `perm` for emptyDir directories.
const EMPTY_DIR_MODE: u32 = 0o777;

fn io_err(volume: &str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let (volume, path) = (volume.to_string(), path.to_path_buf());
    move |source| VolumeError::Io {
        volume,
        path,
        source,
    }
}

/// Creates `path` with mode 0777 whatever the umask.
fn make_dir(volume: &str, path: &Path) -> Result<(), VolumeError> {
    fs::create_dir(path).map_err(io_err(volume, path))?;
    set_mode(volume, path)
}

fn set_mode(volume: &str, path: &Path) -> Result<(), VolumeError> {
    fs::set_permissions(path, fs::Permissions::from_mode(EMPTY_DIR_MODE))
        .map_err(io_err(volume, path))
}

/// A directory volume (host mode).
pub fn directory(volume: &str, path: &Path) -> Result<(), VolumeError> {
    make_dir(volume, path)
}

/// A tmpfs volume, limited to `size_limit` bytes when set.
pub fn memory(volume: &str, path: &Path, size_limit: Option<u64>) -> Result<(), VolumeError> {
    make_dir(volume, path)?;
    let data = size_limit.filter(|s| *s > 0).map(|s| format!("size={s}"));
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::empty(),
        data.as_deref(),
    )
    .map_err(|source| VolumeError::Mount {
        volume: volume.into(),
        fstype: "tmpfs",
        path: path.to_path_buf(),
        source,
    })
}

/// The disk with `serial` (found in `sys_block`; a device node, if one
/// must be made, goes in `node_dir`) mounted at `path`.
pub fn disk(
    volume: &str,
    path: &Path,
    serial: &str,
    sys_block: &Path,
    node_dir: &Path,
) -> Result<(), VolumeError> {
    let device =
        block_device_node(sys_block, serial, node_dir).map_err(|source| VolumeError::Disk {
            volume: volume.into(),
            source,
        })?;
    make_dir(volume, path)?;
    mount(
        Some(&device),
        path,
        Some("ext4"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        // The host formatted it with lazy inode tables: zeroing them in
        // the background would write ~16 MiB per GiB into the sparse file.
        Some("noinit_itable"),
    )
    .map_err(|source| VolumeError::Mount {
        volume: volume.into(),
        fstype: "ext4",
        path: path.to_path_buf(),
        source,
    })?;
    set_mode(volume, path)?;
    let lost_found = path.join("lost+found");
    match fs::remove_dir(&lost_found) {
        // Not empty: a repaired filesystem's findings are kept.
        Err(e) if e.kind() != ErrorKind::NotFound && e.kind() != ErrorKind::DirectoryNotEmpty => {
            Err(io_err(volume, &lost_found)(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_volume_is_world_writable_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("data");
        directory("data", &path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o777);
        assert!(matches!(
            directory("data", &path),
            Err(VolumeError::Io { .. })
        ));
    }
}
