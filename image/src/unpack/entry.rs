//! Creating one filesystem object for a layer entry (directory, file,
//! symlink, hardlink, fifo, device) and giving it the entry's metadata.
//! Callers have already checked that every parent is a real directory.

use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::path::remove_any;
use super::Meta;
use crate::error::{Error, IoContext, Result};

/// Why writing a regular file failed.
pub(super) enum FileError {
    /// The layer ended before the entry's declared size.
    Truncated {
        /// Declared size.
        declared: u64,
        /// Bytes present.
        got: u64,
    },
    /// Anything else.
    Other(Error),
}

impl From<Error> for FileError {
    fn from(e: Error) -> FileError {
        FileError::Other(e)
    }
}

/// Creates (or keeps) a directory at `full`; mode and mtime come later.
pub(super) fn make_dir(full: &Path, meta: Meta) -> Result<()> {
    match fs::symlink_metadata(full) {
        Ok(m) if m.file_type().is_dir() => {}
        _ => {
            remove_any(full).ctx("removing", full)?;
            fs::DirBuilder::new()
                .mode(0o700)
                .create(full)
                .ctx("creating directory", full)?;
        }
    }
    chown(full, meta)
}

/// Writes a regular file with the entry's content and metadata.
pub(super) fn make_file<R: Read>(
    entry: &mut R,
    full: &Path,
    meta: Meta,
    declared: u64,
) -> std::result::Result<(), FileError> {
    remove_any(full).ctx("removing", full)?;
    // create_new (O_CREAT|O_EXCL) never follows a symlink at `full`.
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(full)
        .ctx("creating", full)?;
    let mut out = BufWriter::new(file);
    let got = io::copy(&mut entry.take(declared), &mut out).ctx("writing", full)?;
    if got != declared {
        return Err(FileError::Truncated { declared, got });
    }
    out.flush().ctx("writing", full)?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io("writing", full, e.into_error()))?;
    std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid)).ctx("chown", full)?;
    file.set_permissions(fs::Permissions::from_mode(meta.mode))
        .ctx("chmod", full)?;
    set_file_mtime(&file, full, meta)?;
    Ok(())
}

/// Creates a symlink (its target is never followed).
pub(super) fn make_symlink(target: &[u8], full: &Path, meta: Meta) -> Result<()> {
    remove_any(full).ctx("removing", full)?;
    let target = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(target);
    std::os::unix::fs::symlink(target, full).ctx("creating symlink", full)?;
    chown(full, meta)?;
    set_mtime(full, meta)
}

/// Creates a hardlink to `target` (already resolved inside the root).
pub(super) fn make_hardlink(target: &Path, full: &Path) -> Result<()> {
    remove_any(full).ctx("removing", full)?;
    // link(2) (linkat without AT_SYMLINK_FOLLOW) links a symlink itself.
    fs::hard_link(target, full).ctx("creating hardlink", full)
}

/// Creates a fifo or a character/block device.
pub(super) fn make_node(
    kind: EntryType,
    full: &Path,
    meta: Meta,
    major: u32,
    minor: u32,
) -> Result<()> {
    remove_any(full).ctx("removing", full)?;
    let perm = Mode::from_bits_truncate(meta.mode & 0o777);
    let res = match kind {
        EntryType::Fifo => nix::unistd::mkfifo(full, perm),
        EntryType::Char => stat::mknod(
            full,
            SFlag::S_IFCHR,
            perm,
            stat::makedev(major.into(), minor.into()),
        ),
        _ => stat::mknod(
            full,
            SFlag::S_IFBLK,
            perm,
            stat::makedev(major.into(), minor.into()),
        ),
    };
    res.map_err(|e| Error::io("creating node", full, e.into()))?;
    chown(full, meta)?;
    fs::set_permissions(full, fs::Permissions::from_mode(meta.mode)).ctx("chmod", full)?;
    set_mtime(full, meta)
}

/// Sets owner (not following a symlink at `full`).
pub(super) fn chown(full: &Path, meta: Meta) -> Result<()> {
    std::os::unix::fs::lchown(full, Some(meta.uid), Some(meta.gid)).ctx("chown", full)
}

/// Sets a directory's mode and mtime.
pub(super) fn chmod_and_mtime(full: &Path, meta: Meta) -> Result<()> {
    fs::set_permissions(full, fs::Permissions::from_mode(meta.mode)).ctx("chmod", full)?;
    set_mtime(full, meta)
}

/// Sets the mtime of `full` itself (not following a symlink).
fn set_mtime(full: &Path, meta: Meta) -> Result<()> {
    stat::utimensat(
        nix::fcntl::AT_FDCWD,
        full,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::new(meta.mtime, 0),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::io("setting mtime of", full, e.into()))
}

/// Sets the mtime of an open file.
fn set_file_mtime(file: &File, full: &Path, meta: Meta) -> Result<()> {
    let secs = u64::try_from(meta.mtime).unwrap_or(0);
    file.set_times(FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_secs(secs)))
        .ctx("setting mtime of", full)
}
