//! Verifying one candidate image from an archive: parse its config, read
//! every layer to check its uncompressed digest against the config's
//! `rootfs.diff_ids`, and produce the record plus the blobs to store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::archive::{Candidate, StagedArchive};
use crate::config::parse_config;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::{self, Compression};
use crate::manifest::{
    Descriptor, Manifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_MANIFEST,
};
use crate::record::{ImageRecord, LayerRecord};

/// A verified image, ready to be committed.
pub(crate) struct Verified {
    /// Its record.
    pub record: ImageRecord,
    /// Its blobs (manifest, config, layers) as staged files.
    pub blobs: Vec<(Digest, PathBuf)>,
}

/// Layers already read in this load: blob digest → (diff_id, compression).
pub(crate) type LayerCache = HashMap<Digest, (Digest, Compression)>;

/// Verifies candidate number `n` of an archive; a synthesized manifest is
/// written into `staging`.
pub(crate) fn verify(
    staged: &StagedArchive,
    candidate: Candidate,
    staging: &Path,
    n: usize,
    cache: &mut LayerCache,
) -> Result<Verified> {
    let config_what = format!("config {}", candidate.config.digest);
    let parsed = parse_config(
        &staged.read_small(&candidate.config, &config_what)?,
        &config_what,
    )?;
    if parsed.diff_ids.len() != candidate.layers.len() {
        return Err(staged.invalid(format!(
            "{config_what} lists {} diff_ids but the image has {} layers",
            parsed.diff_ids.len(),
            candidate.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(candidate.layers.len());
    for (i, (layer, expected)) in candidate.layers.iter().zip(&parsed.diff_ids).enumerate() {
        let digest = &layer.file.digest;
        layer::check_media_type(&layer.media_type, &digest.to_string())?;
        let (diff_id, compression) = match cache.get(digest) {
            Some(known) => known.clone(),
            None => {
                let found = layer::inspect(&layer.file.path, digest, staged.limits())?;
                cache.insert(digest.clone(), found.clone());
                found
            }
        };
        if &diff_id != expected {
            return Err(Error::DigestMismatch {
                what: format!("layer {i} ({digest}) uncompressed content against the config's rootfs.diff_ids"),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
        layers.push(LayerRecord {
            digest: digest.to_string(),
            diff_id: diff_id.to_string(),
            size: layer.file.size,
            compression,
        });
    }
    let (manifest_digest, manifest_path) = match &candidate.manifest {
        Some(file) => (file.digest.clone(), file.path.clone()),
        None => synthesize_manifest(
            &candidate,
            &layers,
            &staging.join(format!("manifest-{n}.json")),
        )?,
    };
    let mut blobs = vec![
        (manifest_digest.clone(), manifest_path),
        (
            candidate.config.digest.clone(),
            candidate.config.path.clone(),
        ),
    ];
    blobs.extend(
        candidate
            .layers
            .iter()
            .map(|l| (l.file.digest.clone(), l.file.path.clone())),
    );
    Ok(Verified {
        record: ImageRecord {
            names: candidate.names,
            id: candidate.config.digest.to_string(),
            manifest_digest: manifest_digest.to_string(),
            config: parsed.config,
            size: layers.iter().map(|l| l.size).sum(),
            created: parsed.created,
            layers,
            warnings: candidate.warnings,
        },
        blobs,
    })
}

/// Writes an OCI manifest for an image that came without one.
fn synthesize_manifest(
    candidate: &Candidate,
    layers: &[LayerRecord],
    dest: &Path,
) -> Result<(Digest, PathBuf)> {
    let descriptor = |media_type: &str, digest: String, size: u64| Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        platform: None,
        annotations: Default::default(),
    };
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: descriptor(
            OCI_CONFIG,
            candidate.config.digest.to_string(),
            candidate.config.size,
        ),
        layers: layers
            .iter()
            .map(|l| {
                let media_type = match l.compression {
                    Compression::None => OCI_LAYER_TAR,
                    Compression::Gzip => OCI_LAYER_GZIP,
                };
                descriptor(media_type, l.digest.clone(), l.size)
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
        what: "synthesized manifest".to_string(),
        source,
    })?;
    std::fs::write(dest, &bytes).ctx("writing", dest)?;
    std::fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .ctx("syncing", dest)?;
    Ok((Digest::of(&bytes), dest.to_path_buf()))
}
