//! OCI / docker schema 2 JSON documents: descriptors, image indexes and
//! image manifests, with the media types this store understands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// OCI image manifest.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker schema 2 manifest.
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// Annotation holding an image's name (full reference or just a tag).
pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and docker write with the full image name.
pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest, still unparsed (checked where used).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, for entries of an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The platform an index entry is for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Platform {
    /// CPU architecture (`amd64`).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
}

impl Platform {
    /// Whether this is linux/amd64, the only platform podvm runs.
    pub(crate) fn is_linux_amd64(&self) -> bool {
        self.os == "linux" && self.architecture == "amd64"
    }
}

/// An image index (or docker manifest list).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    /// Schema version, must be 2.
    pub schema_version: u32,
    /// The entries.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    /// Schema version, must be 2.
    pub schema_version: u32,
    /// Media type, when the manifest states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

/// Whether a descriptor media type is an image index / manifest list.
pub(crate) fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a descriptor media type is an image manifest (empty: assume so).
pub(crate) fn is_manifest_type(media_type: &str) -> bool {
    media_type.is_empty() || media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Parses a JSON document, naming it in the error.
pub(crate) fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })
}
