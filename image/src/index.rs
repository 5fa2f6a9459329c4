//! The image index `<root>/images.json`: every image record with its names.
//! Readers read it as is (it is replaced atomically); writers hold an
//! exclusive `flock` on `<root>/images.lock` around read-modify-write.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;
use crate::record::ImageRecord;
use crate::reference::normalize_reference;

/// Current format version of `images.json`.
const VERSION: u32 = 1;
/// Shortest hex id prefix accepted.
pub(crate) const MIN_PREFIX: usize = 12;

/// The contents of `images.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    version: u32,
    /// The images, in load order.
    pub images: Vec<ImageRecord>,
}

/// Held while the index is being updated.
pub(crate) struct IndexLock {
    _lock: Flock<File>,
}

/// Takes the exclusive index lock (blocking).
pub(crate) fn lock(path: &Path) -> Result<IndexLock> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx("opening lock file", path)?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::io("locking", path, io::Error::from(errno)))?;
    Ok(IndexLock { _lock: lock })
}

/// Reads the index (empty if it does not exist yet).
pub(crate) fn read(path: &Path) -> Result<Index> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Index {
                version: VERSION,
                images: Vec::new(),
            })
        }
        Err(e) => return Err(Error::io("reading image index", path, e)),
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        what: format!("image index {}", path.display()),
        source,
    })?;
    if index.version != VERSION {
        return Err(Error::Corrupt(format!(
            "image index {} has version {}, this podvm reads version {VERSION}",
            path.display(),
            index.version
        )));
    }
    Ok(index)
}

/// Writes the index atomically (call with the lock held).
pub(crate) fn write(path: &Path, index: &Index) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(index).map_err(|source| Error::Json {
        what: "image index".to_string(),
        source,
    })?;
    write_atomic(path, &bytes)
}

impl Index {
    /// Whether an image with this id is present.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.images.iter().any(|i| i.id == id)
    }

    /// Adds an image: its names move to it from any other image (retag);
    /// an image already present (same id) just gains the names.
    pub(crate) fn add(&mut self, record: ImageRecord) {
        for other in &mut self.images {
            if other.id != record.id {
                other.names.retain(|n| !record.names.contains(n));
            }
        }
        match self.images.iter_mut().find(|i| i.id == record.id) {
            Some(existing) => {
                for name in record.names {
                    if !existing.names.contains(&name) {
                        existing.names.push(name);
                    }
                }
                existing.warnings = record.warnings;
            }
            None => self.images.push(record),
        }
    }

    /// Finds the image a reference means: a name (normalized), an id
    /// `sha256:<hex>`, or a unique hex id prefix of at least 12 digits.
    pub(crate) fn resolve(&self, reference: &str) -> Result<usize> {
        if reference.starts_with("sha256:") {
            let digest = Digest::parse(reference)?.to_string();
            return self
                .images
                .iter()
                .position(|i| i.id == digest)
                .ok_or_else(|| Error::NotFound(reference.to_string()));
        }
        if let Ok(name) = normalize_reference(reference) {
            if let Some(pos) = self.position_by_name(&name) {
                return Ok(pos);
            }
        }
        let is_hex = reference
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex && (MIN_PREFIX..=64).contains(&reference.len()) {
            let matches: Vec<usize> = (0..self.images.len())
                .filter(|&i| self.images[i].id_hex().starts_with(reference))
                .collect();
            match matches.as_slice() {
                [one] => return Ok(*one),
                [] => {}
                many => {
                    return Err(Error::Ambiguous {
                        prefix: reference.to_string(),
                        matches: many
                            .iter()
                            .map(|&i| self.images[i].id.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        normalize_reference(reference)?;
        Err(Error::NotFound(reference.to_string()))
    }

    /// The image holding a normalized name (or, for `name@digest`, the image
    /// with that manifest digest or id).
    fn position_by_name(&self, name: &str) -> Option<usize> {
        if let Some((_, digest)) = name.split_once('@') {
            return self
                .images
                .iter()
                .position(|i| i.manifest_digest == digest || i.id == digest);
        }
        self.images
            .iter()
            .position(|i| i.names.iter().any(|n| n == name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::ImageConfig;

    fn record(id_hex: &str, names: &[&str]) -> ImageRecord {
        ImageRecord {
            names: names.iter().map(|n| n.to_string()).collect(),
            id: format!("sha256:{id_hex}"),
            manifest_digest: format!("sha256:{}", "f".repeat(64)),
            config: ImageConfig::default(),
            size: 0,
            created: None,
            layers: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let a = format!("abcdef012345{}", "0".repeat(52));
        let b = format!("abcdef012345{}", "1".repeat(52));
        let mut idx = Index::default();
        idx.add(record(&a, &["docker.io/library/a:latest"]));
        idx.add(record(&b, &[]));
        let err = idx.resolve("abcdef012345").unwrap_err();
        assert!(matches!(err, Error::Ambiguous { .. }), "{err}");
        assert!(
            err.to_string().contains(&a) && err.to_string().contains(&b),
            "{err}"
        );
        assert_eq!(idx.resolve("abcdef0123450").unwrap(), 0);
        assert_eq!(idx.resolve("abcdef0123451").unwrap(), 1);
        assert_eq!(idx.resolve("a").unwrap(), 0);
    }

    #[test]
    fn retag_moves_names() {
        let mut idx = Index::default();
        idx.add(record(
            &"1".repeat(64),
            &["docker.io/library/x:latest", "docker.io/library/y:1"],
        ));
        idx.add(record(&"2".repeat(64), &["docker.io/library/x:latest"]));
        assert_eq!(idx.images[0].names, ["docker.io/library/y:1"]);
        assert_eq!(idx.resolve("x").unwrap(), 1);
    }
}
