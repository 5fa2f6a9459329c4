//! How much of its `sizeLimit` an emptyDir uses, measured as kubelet's
//! `fs.DiskUsage` does when there are no filesystem quotas: the allocated
//! blocks (`st_blocks * 512`) of everything in the tree, the root
//! included, hard links counted once, symlinks not followed, other
//! filesystems not entered.
//!
//! The tree belongs to the containers, which may change it during the walk:
//! every directory is opened from the volume's root with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`) and what
//! vanished or changed meanwhile is skipped.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{open, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

fn open_dir_beneath(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    openat2(root, rel, how)
}

/// Running totals of one walk.
struct Walk {
    dev: u64,
    bytes: u64,
    seen: HashSet<u64>,
}

impl Walk {
    /// Counts `st`; false when it is on another filesystem (not entered).
    fn count(&mut self, st: &FileStat) -> bool {
        if st.st_dev != self.dev {
            return false;
        }
        if st.st_nlink > 1 && !self.seen.insert(st.st_ino) {
            return true;
        }
        self.bytes = self
            .bytes
            .saturating_add((st.st_blocks.max(0) as u64).saturating_mul(512));
        true
    }
}

/// Bytes the tree at `root` takes on disk.
pub fn disk_usage(root: &Path) -> Result<u64, Errno> {
    let root_fd = open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let top = fstat(&root_fd)?;
    let mut walk = Walk {
        dev: top.st_dev,
        bytes: 0,
        seen: HashSet::new(),
    };
    walk.count(&top);
    let mut pending = vec![PathBuf::from(".")];
    while let Some(rel) = pending.pop() {
        let Ok(fd) = open_dir_beneath(&root_fd, &rel) else {
            // Gone, replaced by a symlink or a mount point since listed.
            continue;
        };
        let mut dir = Dir::from_fd(fd)?;
        let names: Vec<CString> = dir
            .iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for name in names {
            let Ok(st) = fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            if walk.count(&st) && is_dir(&st) {
                pending.push(rel.join(OsStr::from_bytes(name.as_bytes())));
            }
        }
    }
    Ok(walk.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn blocks(path: &Path) -> u64 {
        fs::symlink_metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn counts_allocated_blocks_once_and_never_follows_links() {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        fs::create_dir_all(vol.join("a/b")).unwrap();
        fs::write(vol.join("a/b/data"), vec![7u8; 100_000]).unwrap();
        fs::write(vol.join("small"), b"x").unwrap();
        fs::hard_link(vol.join("small"), vol.join("a/small-again")).unwrap();
        // A sparse file takes no blocks for its hole.
        let sparse = fs::File::create(vol.join("sparse")).unwrap();
        sparse.set_len(50_000_000).unwrap();
        // Big trees outside, reached only through symlinks.
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("big"), vec![1u8; 1_000_000]).unwrap();
        symlink(&outside, vol.join("link-out")).unwrap();
        symlink(outside.join("big"), vol.join("a/link-file")).unwrap();

        let expected: u64 = [
            vol.clone(),
            vol.join("a"),
            vol.join("a/b"),
            vol.join("a/b/data"),
            vol.join("small"),
            vol.join("sparse"),
            vol.join("link-out"),
            vol.join("a/link-file"),
        ]
        .iter()
        .map(|p| blocks(p))
        .sum();
        let used = disk_usage(&vol).unwrap();
        assert_eq!(used, expected);
        assert!(used >= 100_000, "{used}");
        assert!(used < 1_000_000, "followed a link: {used}");

        fs::write(vol.join("more"), vec![3u8; 200_000]).unwrap();
        assert_eq!(
            disk_usage(&vol).unwrap(),
            expected + blocks(&vol.join("more"))
        );
    }

    #[test]
    fn the_root_must_be_a_real_directory() {
        let tmp = tempfile::tempdir().unwrap();
        symlink(tmp.path(), tmp.path().join("link")).unwrap();
        assert!(disk_usage(&tmp.path().join("link")).is_err());
        assert!(disk_usage(&tmp.path().join("missing")).is_err());
    }
}
