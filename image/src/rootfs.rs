//! Unpacked root filesystems, one per image id: `<root>/rootfs/<hex>`,
//! built in a staging directory (layers applied in order, each re-hashed
//! against its diff_id) and renamed into place.

use std::fs;
use std::path::PathBuf;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::sync_dir;
use crate::layer::open_layer;
use crate::record::ImageRecord;
use crate::store::ImageStore;
use crate::unpack::Unpacker;

impl ImageStore {
    /// The unpacked root filesystem of `image`, built on first use.
    pub fn rootfs_dir(&self, image: &ImageRecord) -> Result<PathBuf> {
        let id = Digest::parse(&image.id)?;
        let parent = self.root.join("rootfs");
        let dest = parent.join(id.hex());
        if dest.is_dir() {
            return Ok(dest);
        }
        let tmp_root = self.root.join("tmp");
        let staging = tempfile::Builder::new()
            .prefix(&format!("rootfs-{}-", id.hex()))
            .tempdir_in(&tmp_root)
            .ctx("creating staging directory in", &tmp_root)?;
        let tree = staging.path().join("rootfs");
        fs::create_dir(&tree).ctx("creating", &tree)?;
        let mut unpacker = Unpacker::new(&tree, self.limits.max_layer_entries)?;
        for layer in &image.layers {
            let digest = Digest::parse(&layer.digest)?;
            let diff_id = Digest::parse(&layer.diff_id)?;
            let blob = self.blobs.path(&digest);
            if !blob.is_file() {
                return Err(Error::Corrupt(format!(
                    "layer blob {digest} of image {id} is missing"
                )));
            }
            let (reader, _) = open_layer(&blob, &digest)?;
            let mut hashing = HashingReader::new(reader, self.limits.max_layer_bytes);
            unpacker.apply_layer(&mut hashing, &layer.digest)?;
            hashing.drain().ctx("reading layer", &blob)?;
            let (actual, _) = hashing.finish();
            if actual != diff_id {
                return Err(Error::Corrupt(format!(
                    "layer blob {digest} of image {id} no longer matches its diff_id {diff_id} (got {actual})"
                )));
            }
        }
        unpacker.finish()?;
        if let Err(e) = fs::rename(&tree, &dest) {
            // Another caller may have finished the same tree first.
            if !dest.is_dir() {
                return Err(Error::io("moving unpacked tree to", &dest, e));
            }
        }
        sync_dir(&parent)?;
        Ok(dest)
    }
}
