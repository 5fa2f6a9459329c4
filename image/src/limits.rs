//! Bounds on what an archive may make the store read, write or keep.

/// Size and count limits applied to every archive and layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON document (index, manifest, config) read into memory.
    pub max_metadata_bytes: u64,
    /// Largest single archive member (blob) accepted.
    pub max_blob_bytes: u64,
    /// Largest uncompressed layer accepted.
    pub max_layer_bytes: u64,
    /// Most members an archive may have.
    pub max_archive_entries: u64,
    /// Most entries one layer may have.
    pub max_layer_entries: u64,
    /// Most layers one image may have.
    pub max_layers: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        const GIB: u64 = 1 << 30;
        Limits {
            max_metadata_bytes: 4 << 20,
            max_blob_bytes: 32 * GIB,
            max_layer_bytes: 64 * GIB,
            max_archive_entries: 100_000,
            max_layer_entries: 4_000_000,
            max_layers: 256,
        }
    }
}
