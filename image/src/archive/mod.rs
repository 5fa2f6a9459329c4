//! Reading an image archive: the tar is streamed once and every member is
//! written to a staging directory while being hashed (bounded in size and
//! count); the format is then detected and each image in it described as a
//! [`Candidate`] whose blobs are all verified staged files.

mod docker;
mod oci;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::limits::Limits;
use crate::manifest::Descriptor;

/// Most symlink hops followed inside an archive.
const MAX_LINK_HOPS: usize = 16;

/// One archive member written to the staging directory.
#[derive(Clone, Debug)]
pub(crate) struct StagedFile {
    /// Where it was staged.
    pub path: PathBuf,
    /// sha256 of its content.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// A layer of a candidate image.
#[derive(Clone, Debug)]
pub(crate) struct CandidateLayer {
    /// The blob.
    pub file: StagedFile,
    /// The media type the manifest gives (empty for docker-archive).
    pub media_type: String,
}

/// One image found in an archive, its blobs staged and digest-checked.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// Normalized names.
    pub names: Vec<String>,
    /// Notes for the user (for example why it has no name).
    pub warnings: Vec<String>,
    /// The manifest blob, or `None` when the format has none (docker-archive).
    pub manifest: Option<StagedFile>,
    /// The config blob.
    pub config: StagedFile,
    /// The layers, base first.
    pub layers: Vec<CandidateLayer>,
}

/// Every member of an archive, staged.
pub(crate) struct StagedArchive {
    name: String,
    files: HashMap<String, StagedFile>,
    links: HashMap<String, String>,
    limits: Limits,
}

impl StagedArchive {
    /// Streams `archive` into `dir` (an empty directory).
    pub(crate) fn stage(archive: &Path, dir: &Path, limits: &Limits) -> Result<StagedArchive> {
        let mut staged = StagedArchive {
            name: archive.display().to_string(),
            files: HashMap::new(),
            links: HashMap::new(),
            limits: limits.clone(),
        };
        let file = File::open(archive).ctx("opening archive", archive)?;
        let mut tar = tar::Archive::new(BufReader::with_capacity(256 * 1024, file));
        let entries = tar
            .entries()
            .map_err(|e| staged.invalid(format!("not a tar file: {e}")))?;
        for (i, entry) in entries.enumerate() {
            if i as u64 >= limits.max_archive_entries {
                return Err(Error::TooLarge {
                    what: format!("archive {} (member count)", staged.name),
                    size: i as u64 + 1,
                    limit: limits.max_archive_entries,
                });
            }
            let mut entry =
                entry.map_err(|e| staged.invalid(format!("reading tar member: {e}")))?;
            staged.add(&mut entry, &dir.join(format!("member-{i}")))?;
        }
        Ok(staged)
    }

    /// Records (and for regular files, stages to `dest`) one member.
    fn add<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, dest: &Path) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let Some(path) = member_path(&raw, "") else {
            if raw.iter().all(|&b| b == b'/' || b == b'.') {
                return Ok(());
            }
            return Err(self.invalid(format!(
                "member name {:?} is not a clean relative path",
                String::from_utf8_lossy(&raw)
            )));
        };
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                let file = self.stage_member(entry, &path, dest)?;
                self.links.remove(&path);
                self.files.insert(path, file);
            }
            EntryType::Symlink | EntryType::Link => {
                let symlink = entry.header().entry_type() == EntryType::Symlink;
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let base = match path.rsplit_once('/') {
                    Some((dir, _)) if symlink => dir.to_string(),
                    _ => String::new(),
                };
                let target = member_path(&target, &base).ok_or_else(|| {
                    self.invalid(format!("link {path} points outside the archive"))
                })?;
                self.files.remove(&path);
                self.links.insert(path, target);
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes one regular member to `dest`, hashing it.
    fn stage_member<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        path: &str,
        dest: &Path,
    ) -> Result<StagedFile> {
        let declared = entry.size();
        if declared > self.limits.max_blob_bytes {
            return Err(Error::TooLarge {
                what: format!("archive member {path} (declared size)"),
                size: declared,
                limit: self.limits.max_blob_bytes,
            });
        }
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .ctx("creating staging file", dest)?;
        let mut writer = HashingWriter::new(BufWriter::with_capacity(256 * 1024, out));
        let got = io::copy(&mut entry.take(declared), &mut writer)
            .map_err(|e| self.invalid(format!("reading member {path}: {e}")))?;
        if got != declared {
            return Err(self.invalid(format!(
                "archive is truncated: member {path} declares {declared} bytes, only {got} present"
            )));
        }
        writer.flush().ctx("writing staging file", dest)?;
        let (buffered, digest, size) = writer.finish();
        let out = buffered
            .into_inner()
            .map_err(|e| Error::io("writing staging file", dest, e.into_error()))?;
        out.sync_all().ctx("syncing staging file", dest)?;
        if let Some(named) = path.strip_prefix("blobs/sha256/") {
            if named != digest.hex() {
                return Err(Error::DigestMismatch {
                    what: format!("blob {path} in archive {}", self.name),
                    expected: format!("sha256:{named}"),
                    actual: digest.to_string(),
                });
            }
        }
        Ok(StagedFile {
            path: dest.to_path_buf(),
            digest,
            size,
        })
    }

    /// An [`Error::InvalidArchive`] naming this archive.
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidArchive {
            archive: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Whether the archive has a member (file or link) at `path`.
    pub(crate) fn has(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.links.contains_key(path)
    }

    /// The staged file at `path`, following links inside the archive.
    pub(crate) fn file(&self, path: &str) -> Result<&StagedFile> {
        let mut cur = path;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(cur) {
                return Ok(f);
            }
            match self.links.get(cur) {
                Some(next) => cur = next,
                None => return Err(self.invalid(format!("missing member {path}"))),
            }
        }
        Err(self.invalid(format!("too many link hops resolving {path}")))
    }

    /// Reads a small (JSON) member into memory, bounded by the metadata limit.
    pub(crate) fn read_small(&self, file: &StagedFile, what: &str) -> Result<Vec<u8>> {
        if file.size > self.limits.max_metadata_bytes {
            return Err(Error::TooLarge {
                what: what.to_string(),
                size: file.size,
                limit: self.limits.max_metadata_bytes,
            });
        }
        std::fs::read(&file.path).ctx("reading staged", &file.path)
    }

    /// The blob a descriptor names, checking its digest and size.
    pub(crate) fn blob(&self, desc: &Descriptor, what: &str) -> Result<&StagedFile> {
        let digest = Digest::parse(&desc.digest)?;
        let file = self
            .file(&format!("blobs/sha256/{}", digest.hex()))
            .map_err(|_| self.invalid(format!("{what} {digest} is missing from the archive")))?;
        if file.digest != digest {
            return Err(Error::DigestMismatch {
                what: format!("{what} in archive {}", self.name),
                expected: digest.to_string(),
                actual: file.digest.to_string(),
            });
        }
        if file.size != desc.size {
            return Err(Error::SizeMismatch {
                what: format!("{what} {digest}"),
                expected: desc.size,
                actual: file.size,
            });
        }
        Ok(file)
    }

    /// The limits in force.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Detects the archive's format and describes every image in it.
pub(crate) fn read_images(staged: &StagedArchive) -> Result<Vec<Candidate>> {
    if staged.has("oci-layout") && staged.has("index.json") {
        oci::read(staged)
    } else if staged.has("manifest.json") {
        docker::read(staged)
    } else {
        Err(staged.invalid(
            "neither an OCI image archive (oci-layout, index.json) nor a docker-archive (manifest.json)",
        ))
    }
}

/// Normalizes a member name (or link target, relative to directory `base`)
/// to `a/b/c` form; `None` if it is empty or climbs above the archive root.
fn member_path(raw: &[u8], base: &str) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(c) => parts.push(c.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir => parts.clear(),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::member_path;

    #[test]
    fn member_paths() {
        assert_eq!(
            member_path(b"./index.json", "").as_deref(),
            Some("index.json")
        );
        assert_eq!(member_path(b"../x.tar", "abc").as_deref(), Some("x.tar"));
        assert_eq!(member_path(b"../../x.tar", "abc"), None);
        assert_eq!(
            member_path(b"/blobs/sha256/x", "abc").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(member_path(b"./", ""), None);
    }
}
