//! Durable file updates: fsync of directories and atomic replace
//! (temp file + fsync + rename + directory fsync).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("syncing directory", dir)
}

/// Atomically replaces `path` with `bytes`. Callers serialize writers of
/// the same path (the temp name is per process).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::io("writing", path, std::io::ErrorKind::InvalidInput.into()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .ctx("creating", &tmp)?;
    file.write_all(bytes).ctx("writing", &tmp)?;
    file.sync_all().ctx("syncing", &tmp)?;
    fs::rename(&tmp, path).ctx("renaming into place", path)?;
    sync_dir(dir)
}
