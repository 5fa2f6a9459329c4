//! Safe extraction of layer tars, base first, into one root directory.
//!
//! Every entry name is made relative and `..` is refused; parents are
//! checked with `lstat` and a symlink parent is refused, so nothing is
//! written through a symlink; hardlink targets must be inside the root.
//! Whiteouts (`.wh.<name>`) delete the lower entry and opaque markers
//! (`.wh..wh..opq`) hide what lower layers had in a directory while keeping
//! what the same layer adds. Modes, owners, mtimes, symlinks, hardlinks,
//! fifos and device nodes are preserved (ownership and devices need root).

mod entry;
mod path;
mod whiteout;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::error::{Error, IoContext, Result};

pub(crate) use path::{remove_any as path_remove_any, sanitize};

/// Ownership, mode and mtime of an entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

impl Meta {
    /// Reads the metadata from a tar header.
    pub(crate) fn from_header(h: &tar::Header) -> std::result::Result<Meta, String> {
        let field = |name: &str, e: std::io::Error| format!("bad {name} field: {e}");
        let uid = h.uid().map_err(|e| field("uid", e))?;
        let gid = h.gid().map_err(|e| field("gid", e))?;
        Ok(Meta {
            mode: h.mode().map_err(|e| field("mode", e))? & 0o7777,
            uid: u32::try_from(uid).map_err(|_| format!("uid {uid} out of range"))?,
            gid: u32::try_from(gid).map_err(|_| format!("gid {gid} out of range"))?,
            mtime: i64::try_from(h.mtime().map_err(|e| field("mtime", e))?).unwrap_or(i64::MAX),
        })
    }
}

/// Applies layers in order to a root directory.
pub(crate) struct Unpacker {
    root: PathBuf,
    layer: String,
    /// Paths (and their ancestors) the current layer has written.
    written: HashSet<PathBuf>,
    /// Directory mode and mtime, applied at the end (children change mtimes).
    dirs: HashMap<PathBuf, Meta>,
    max_entries: u64,
}

impl Unpacker {
    /// An unpacker into `root`, an existing empty directory.
    pub(crate) fn new(root: &Path, max_entries: u64) -> Result<Unpacker> {
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).ctx("chmod", root)?;
        Ok(Unpacker {
            root: root.to_path_buf(),
            layer: String::new(),
            written: HashSet::new(),
            dirs: HashMap::new(),
            max_entries,
        })
    }

    /// Extracts one (uncompressed) layer tar; `layer` names it in errors.
    pub(crate) fn apply_layer<R: Read>(&mut self, reader: R, layer: &str) -> Result<()> {
        self.layer = layer.to_string();
        self.written.clear();
        let context = format!("reading layer {layer}");
        let tar_err = |source| Error::Io {
            context: context.clone(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        for (i, entry) in archive.entries().map_err(tar_err)?.enumerate() {
            if i as u64 >= self.max_entries {
                return Err(Error::TooLarge {
                    what: format!("layer {layer} (entry count)"),
                    size: i as u64 + 1,
                    limit: self.max_entries,
                });
            }
            let mut entry = entry.map_err(tar_err)?;
            self.apply_entry(&mut entry)?;
        }
        Ok(())
    }

    /// An [`Error::UnsafeEntry`] for the current layer.
    fn refuse(&self, raw: &[u8], reason: String) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.clone(),
            path: String::from_utf8_lossy(raw).into_owned(),
            reason,
        }
    }

    /// Applies one entry.
    fn apply_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let meta = Meta::from_header(entry.header()).map_err(|r| self.refuse(&raw, r))?;
        let Some(rel) = sanitize(&raw).map_err(|r| self.refuse(&raw, r))? else {
            if kind == EntryType::Directory {
                self.dirs.insert(PathBuf::new(), meta);
                let root = self.root.clone();
                entry::chown(&root, meta)?;
            }
            return Ok(());
        };
        let name = rel
            .file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default();
        if let Some(hidden) = name.strip_prefix(b".wh.") {
            let hidden = hidden.to_vec();
            return self
                .whiteout(&rel, &hidden)
                .map_err(|r| self.refuse(&raw, r));
        }
        path::check_parents(&self.root, &rel, true).map_err(|r| self.refuse(&raw, r))?;
        let full = self.root.join(&rel);
        match kind {
            EntryType::Directory => {
                entry::make_dir(&full, meta)?;
                self.dirs.insert(rel.clone(), meta);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let declared = entry.size();
                entry::make_file(entry, &full, meta, declared).map_err(|e| match e {
                    entry::FileError::Truncated { declared, got } => self.refuse(
                        &raw,
                        format!("layer is truncated: entry declares {declared} bytes, only {got} present"),
                    ),
                    entry::FileError::Other(e) => e,
                })?;
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                if target.is_empty() {
                    return Err(self.refuse(&raw, "symlink with an empty target".to_string()));
                }
                entry::make_symlink(&target, &full, meta)?;
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target_full = self
                    .hardlink_target(&target)
                    .map_err(|r| self.refuse(&raw, r))?;
                if target_full != full {
                    entry::make_hardlink(&target_full, &full)?;
                }
            }
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                entry::make_node(kind, &full, meta, major, minor)?;
            }
            other => {
                return Err(self.refuse(&raw, format!("unsupported entry type {other:?}")));
            }
        }
        for ancestor in rel.ancestors() {
            self.written.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    /// Resolves a hardlink target inside the root: no `..`, no symlink
    /// parents, must exist and not be a directory.
    fn hardlink_target(&self, raw: &[u8]) -> std::result::Result<PathBuf, String> {
        let shown = String::from_utf8_lossy(raw);
        let rel = sanitize(raw)
            .map_err(|r| format!("hardlink target {shown:?}: {r}"))?
            .ok_or_else(|| "hardlink to the root directory".to_string())?;
        match path::check_parents(&self.root, &rel, false) {
            Ok(path::Parents::Ready) => {}
            Ok(path::Parents::Missing) => {
                return Err(format!("hardlink target {shown:?} does not exist"))
            }
            Err(r) => return Err(format!("hardlink target {shown:?}: {r}")),
        }
        let full = self.root.join(&rel);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => Err(format!("hardlink target {shown:?} is a directory")),
            Ok(_) => Ok(full),
            Err(_) => Err(format!("hardlink target {shown:?} does not exist")),
        }
    }

    /// Applies the recorded directory modes and mtimes (skipping any that a
    /// later layer removed or replaced).
    pub(crate) fn finish(self) -> Result<()> {
        let mut dirs: Vec<_> = self.dirs.into_iter().collect();
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, meta) in dirs {
            if !matches!(
                path::check_parents(&self.root, &rel, false),
                Ok(path::Parents::Ready)
            ) {
                continue;
            }
            let full = self.root.join(&rel);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_dir() => entry::chmod_and_mtime(&full, meta)?,
                _ => continue,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
