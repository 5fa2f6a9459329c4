//! Layer blobs: compression detection by magic bytes (plain tar or gzip;
//! zstd and others are refused clearly) and import-time inspection, which
//! computes the uncompressed digest (diff_id) and checks every entry name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};
use tar::EntryType;

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::limits::Limits;
use crate::unpack::{sanitize, Meta};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
}

/// Magic numbers of compressions that are recognised but not supported.
const UNSUPPORTED: [(&[u8], &str); 3] = [
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
    (b"BZh", "bzip2"),
];

/// Opens a layer blob and returns a reader of its uncompressed tar.
pub(crate) fn open_layer(path: &Path, layer: &Digest) -> Result<(Box<dyn Read>, Compression)> {
    let file = File::open(path).ctx("opening layer", path)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf().ctx("reading layer", path)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        return Ok((Box::new(gz), Compression::Gzip));
    }
    for (magic, name) in UNSUPPORTED {
        if head.starts_with(magic) {
            return Err(Error::UnsupportedCompression {
                layer: layer.to_string(),
                compression: name.to_string(),
            });
        }
    }
    Ok((Box::new(reader), Compression::None))
}

/// Refuses layer media types that name an unsupported compression.
pub(crate) fn check_media_type(media_type: &str, layer: &str) -> Result<()> {
    for (suffix, name) in [("zstd", "zstd"), ("bzip2", "bzip2"), ("xz", "xz")] {
        if media_type.ends_with(suffix) {
            return Err(Error::UnsupportedCompression {
                layer: layer.to_string(),
                compression: format!("{name} (media type {media_type})"),
            });
        }
    }
    Ok(())
}

/// Reads a whole layer: returns its diff_id and compression, after checking
/// that it is a well-formed tar whose entry names and hardlink targets stay
/// inside the root.
pub(crate) fn inspect(
    path: &Path,
    layer: &Digest,
    limits: &Limits,
) -> Result<(Digest, Compression)> {
    let (reader, compression) = open_layer(path, layer)?;
    let mut hashing = HashingReader::new(reader, limits.max_layer_bytes);
    let context = format!("reading layer {layer}");
    let tar_err = |source| Error::Io {
        context: context.clone(),
        source,
    };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for (i, entry) in archive.entries().map_err(tar_err)?.enumerate() {
            if i as u64 >= limits.max_layer_entries {
                return Err(Error::TooLarge {
                    what: format!("layer {layer} (entry count)"),
                    size: i as u64 + 1,
                    limit: limits.max_layer_entries,
                });
            }
            let mut entry = entry.map_err(tar_err)?;
            check_entry(&entry, layer)?;
            let declared = entry.size();
            let got = std::io::copy(&mut entry, &mut std::io::sink()).map_err(tar_err)?;
            if got != declared {
                return Err(Error::UnsafeEntry {
                    layer: layer.to_string(),
                    path: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
                    reason: format!(
                        "layer is truncated: entry declares {declared} bytes, only {got} present"
                    ),
                });
            }
        }
    }
    hashing.drain().map_err(tar_err)?;
    let (diff_id, _) = hashing.finish();
    Ok((diff_id, compression))
}

/// Checks one entry's type, name and hardlink target.
fn check_entry<R: Read>(entry: &tar::Entry<'_, R>, layer: &Digest) -> Result<()> {
    let raw = entry.path_bytes();
    let refuse = |reason: String| Error::UnsafeEntry {
        layer: layer.to_string(),
        path: String::from_utf8_lossy(&raw).into_owned(),
        reason,
    };
    let kind = entry.header().entry_type();
    match kind {
        EntryType::Regular
        | EntryType::Continuous
        | EntryType::GNUSparse
        | EntryType::Directory
        | EntryType::Symlink
        | EntryType::Fifo
        | EntryType::Char
        | EntryType::Block
        | EntryType::XGlobalHeader
        | EntryType::XHeader => {}
        EntryType::Link => {
            let target = entry.link_name_bytes().unwrap_or_default();
            sanitize(&target)
                .map_err(|r| {
                    refuse(format!(
                        "hardlink target {:?}: {r}",
                        String::from_utf8_lossy(&target)
                    ))
                })?
                .ok_or_else(|| refuse("hardlink to the root directory".to_string()))?;
        }
        other => return Err(refuse(format!("unsupported entry type {other:?}"))),
    }
    sanitize(&raw).map_err(&refuse)?;
    Meta::from_header(entry.header()).map_err(refuse)?;
    Ok(())
}
