//! [`ImageStore`]: the store's directory layout, importing archives
//! (stage + verify without the lock, then commit blobs and index under it),
//! listing, resolving and removing images.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::archive::{self, StagedArchive};
use crate::blobs::BlobStore;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::import;
use crate::index;
use crate::limits::Limits;
use crate::record::ImageRecord;
use crate::unpack::path_remove_any;

/// A local image store rooted at one directory:
///
/// ```text
/// <root>/images.json            index: records and names
/// <root>/images.lock            flock for index updates
/// <root>/blobs/sha256/<hex>     manifests, configs, layers
/// <root>/rootfs/<id hex>/       unpacked root filesystems
/// <root>/disks/<id hex>.erofs   read-only disk images of them
/// <root>/tmp/                   staging (same filesystem, for renames)
/// ```
#[derive(Clone, Debug)]
pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) limits: Limits,
}

impl ImageStore {
    /// Opens (creating its directories) the store at `root`.
    pub fn open(root: &Path) -> Result<ImageStore> {
        ImageStore::open_with_limits(root, Limits::default())
    }

    /// Opens the store at `root` with non-default limits.
    pub fn open_with_limits(root: &Path, limits: Limits) -> Result<ImageStore> {
        for dir in ["rootfs", "disks", "tmp"] {
            let path = root.join(dir);
            fs::create_dir_all(&path).ctx("creating", &path)?;
        }
        let blobs = BlobStore::open(root)?;
        Ok(ImageStore {
            root: root.to_path_buf(),
            blobs,
            limits,
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports every image of an OCI archive or docker-archive, verifying
    /// every digest first; on any error the store is left as it was.
    /// Returns the records of the imported images.
    pub fn load(&self, archive: &Path) -> Result<Vec<ImageRecord>> {
        let staging = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(self.root.join("tmp"))
            .ctx("creating staging directory in", &self.root.join("tmp"))?;
        let staged = StagedArchive::stage(archive, staging.path(), &self.limits)?;
        let candidates = archive::read_images(&staged)?;
        let mut cache = HashMap::new();
        let verified = candidates
            .into_iter()
            .enumerate()
            .map(|(n, c)| import::verify(&staged, c, staging.path(), n, &mut cache))
            .collect::<Result<Vec<_>>>()?;

        let _lock = index::lock(&self.lock_path())?;
        let mut idx = index::read(&self.index_path())?;
        let mut ids = Vec::with_capacity(verified.len());
        for v in verified {
            if !idx.contains(&v.record.id) {
                for (digest, path) in &v.blobs {
                    self.blobs.commit(path, digest)?;
                }
            }
            ids.push(v.record.id.clone());
            idx.add(v.record);
        }
        self.blobs.sync()?;
        index::write(&self.index_path(), &idx)?;
        let mut out: Vec<ImageRecord> = Vec::with_capacity(ids.len());
        for id in ids {
            if out.iter().any(|r| r.id == id) {
                continue;
            }
            if let Some(record) = idx.images.iter().find(|i| i.id == id) {
                out.push(record.clone());
            }
        }
        Ok(out)
    }

    /// Every image in the store, in load order.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(index::read(&self.index_path())?.images)
    }

    /// The image a reference means: a name (normalized, so `busybox` works),
    /// an id `sha256:<hex>`, or a unique hex id prefix of at least 12 digits.
    pub fn resolve(&self, reference: &str) -> Result<ImageRecord> {
        let idx = index::read(&self.index_path())?;
        let pos = idx.resolve(reference)?;
        Ok(idx.images[pos].clone())
    }

    /// Removes a reference. A name is untagged, and the image is deleted
    /// once no name is left; an id (or prefix) deletes the image with all
    /// its names. Deleting removes its blobs no other image uses, its
    /// unpacked tree and its disk image.
    pub fn remove(&self, reference: &str) -> Result<()> {
        let _lock = index::lock(&self.lock_path())?;
        let mut idx = index::read(&self.index_path())?;
        let pos = idx.resolve(reference)?;
        let by_name = crate::reference::normalize_reference(reference)
            .ok()
            .filter(|n| idx.images[pos].names.contains(n));
        if let Some(name) = by_name {
            idx.images[pos].names.retain(|n| *n != name);
            if !idx.images[pos].names.is_empty() {
                return index::write(&self.index_path(), &idx);
            }
        }
        let removed = idx.images.remove(pos);
        index::write(&self.index_path(), &idx)?;

        let in_use: HashSet<&str> = idx.images.iter().flat_map(blob_digests).collect();
        for digest in blob_digests(&removed) {
            if !in_use.contains(digest) {
                self.blobs.remove(&Digest::parse(digest)?)?;
            }
        }
        let hex = Digest::parse(&removed.id)?.hex().to_string();
        if !idx.images.iter().any(|i| i.id == removed.id) {
            let tree = self.root.join("rootfs").join(&hex);
            path_remove_any(&tree).ctx("removing", &tree)?;
            let disk = self.root.join("disks").join(format!("{hex}.erofs"));
            path_remove_any(&disk).ctx("removing", &disk)?;
        }
        self.blobs.sync()
    }

    /// `<root>/images.json`.
    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// `<root>/images.lock`.
    fn lock_path(&self) -> PathBuf {
        self.root.join("images.lock")
    }
}

/// Every blob digest an image uses.
fn blob_digests(image: &ImageRecord) -> impl Iterator<Item = &str> {
    [image.manifest_digest.as_str(), image.id.as_str()]
        .into_iter()
        .chain(image.layers.iter().map(|l| l.digest.as_str()))
}
