//! What the store knows about one image, as listed, resolved and stored in
//! the index.

use serde::{Deserialize, Serialize};

use crate::config::ImageConfig;
use crate::layer::Compression;

/// An image in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Normalized names (`docker.io/library/busybox:latest`); may be empty.
    pub names: Vec<String>,
    /// Image id: the config digest, `sha256:<hex>`.
    pub id: String,
    /// Digest of the manifest (synthesized in OCI form for docker-archives).
    pub manifest_digest: String,
    /// Runtime defaults from the config.
    pub config: ImageConfig,
    /// Sum of the layer blob sizes.
    pub size: u64,
    /// Creation time from the config.
    pub created: Option<String>,
    /// Layers, base first.
    #[serde(default)]
    pub layers: Vec<LayerRecord>,
    /// Notes from the import (for example why the image has no name).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One layer of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Blob digest (of the bytes as stored).
    pub digest: String,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Blob size.
    pub size: u64,
    /// Blob compression.
    pub compression: Compression,
}

impl ImageRecord {
    /// The id without its `sha256:` prefix.
    pub fn id_hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }
}
