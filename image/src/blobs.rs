//! The content-addressed blob store: `<root>/blobs/sha256/<hex>`. Blobs
//! arrive as verified, fsynced staging files and are renamed into place
//! (same filesystem), so a blob path either holds the full content or
//! nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::fsutil::sync_dir;

/// The blob directory of a store.
#[derive(Clone, Debug)]
pub(crate) struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// The blob store under `root`, creating its directory.
    pub(crate) fn open(root: &Path) -> Result<BlobStore> {
        let dir = root.join("blobs").join("sha256");
        fs::create_dir_all(&dir).ctx("creating", &dir)?;
        Ok(BlobStore { dir })
    }

    /// Where the blob `digest` lives.
    pub(crate) fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Moves a verified staging file into place, unless the blob is present.
    pub(crate) fn commit(&self, staged: &Path, digest: &Digest) -> Result<()> {
        let dest = self.path(digest);
        if dest.is_file() {
            return Ok(());
        }
        fs::rename(staged, &dest).ctx("storing blob", &dest)
    }

    /// Makes committed blobs durable.
    pub(crate) fn sync(&self) -> Result<()> {
        sync_dir(&self.dir)
    }

    /// Deletes a blob (a missing one is fine).
    pub(crate) fn remove(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("removing blob", &path),
            _ => Ok(()),
        }
    }
}
