//! Read-only EROFS disk images of unpacked root filesystems, one per image
//! id: `<root>/disks/<hex>.erofs`, made by `mkfs.erofs` into a temp file
//! and renamed into place.

use std::io;
use std::path::PathBuf;
use std::process::Command;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::sync_dir;
use crate::record::ImageRecord;
use crate::store::ImageStore;

impl ImageStore {
    /// The EROFS image of `image`'s root filesystem, built on first use.
    pub fn disk_image(&self, image: &ImageRecord) -> Result<PathBuf> {
        let id = Digest::parse(&image.id)?;
        let dir = self.root.join("disks");
        let dest = dir.join(format!("{}.erofs", id.hex()));
        if dest.is_file() {
            return Ok(dest);
        }
        let tree = self.rootfs_dir(image)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{}.erofs.tmp", id.hex()))
            .tempfile_in(&dir)
            .ctx("creating temp file in", &dir)?
            .into_temp_path();
        let output = Command::new("mkfs.erofs")
            .arg("--quiet")
            .arg(&*tmp)
            .arg(&tree)
            .output()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => Error::MkfsMissing,
                _ => Error::io("running mkfs.erofs for", &tree, e),
            })?;
        if !output.status.success() {
            return Err(Error::Mkfs {
                image: id.to_string(),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .ctx("syncing", &tmp)?;
        tmp.persist(&dest)
            .map_err(|e| Error::io("moving disk image to", &dest, e.error))?;
        sync_dir(&dir)?;
        Ok(dest)
    }
}
