//! The crate's error type: every way an import, unpack or lookup can fail,
//! each naming the thing that was wrong.

use std::io;
use std::path::Path;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem or stream operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An image reference (name) is malformed.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A digest string is malformed.
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A digest uses an algorithm other than sha256.
    #[error("unsupported digest algorithm {algorithm:?} in {digest:?}: only sha256 is supported")]
    UnsupportedDigest {
        /// The digest as given.
        digest: String,
        /// Its algorithm part.
        algorithm: String,
    },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// What was checked (a blob, a layer's diff_id, ...).
        what: String,
        /// The digest the archive claims.
        expected: String,
        /// The digest of the bytes actually present.
        actual: String,
    },
    /// Content size does not match its descriptor.
    #[error("size mismatch for {what}: descriptor says {expected} bytes, content has {actual}")]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// The size the descriptor claims.
        expected: u64,
        /// The size of the content present.
        actual: u64,
    },
    /// Something is larger than the store accepts.
    #[error("{what} is too large: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// What was too large.
        what: String,
        /// Its (declared or actual) size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The archive's structure is not a valid OCI or docker archive.
    #[error("invalid image archive {archive}: {reason}")]
    InvalidArchive {
        /// The archive file.
        archive: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON document (index, manifest, config) could not be parsed.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A layer uses a compression this store cannot read.
    #[error("unsupported layer compression {compression} in layer {layer} (supported: uncompressed tar, gzip)")]
    UnsupportedCompression {
        /// The layer's digest.
        layer: String,
        /// The compression detected.
        compression: String,
    },
    /// An image is for another platform, or the archive holds none for linux/amd64.
    #[error("unsupported platform: {0}")]
    Platform(String),
    /// A layer holds an entry that would escape the root filesystem or is malformed.
    #[error("unsafe entry {path:?} in layer {layer}: {reason}")]
    UnsafeEntry {
        /// The layer's digest.
        layer: String,
        /// The entry's path as written in the layer.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// No image matches a reference.
    #[error("image not found: {0}")]
    NotFound(String),
    /// An id prefix matches more than one image.
    #[error("ambiguous image id prefix {prefix:?}: matches {matches}")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// The ids it matches, comma separated.
        matches: String,
    },
    /// The store's own data is inconsistent (a blob missing or changed on disk).
    #[error("image store is corrupt: {0}")]
    Corrupt(String),
    /// `mkfs.erofs` is not installed.
    #[error("mkfs.erofs not found: install erofs-utils")]
    MkfsMissing,
    /// `mkfs.erofs` failed.
    #[error("mkfs.erofs failed for image {image} ({status}): {stderr}")]
    Mkfs {
        /// The image id.
        image: String,
        /// Its exit status.
        status: String,
        /// Its standard error output.
        stderr: String,
    },
}

impl Error {
    /// An I/O error with a context line naming `path`.
    pub(crate) fn io(what: &str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }
}

/// Attaches a context naming a path to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`Error::Io`] with "`what` `path`" as context.
    fn ctx(self, what: &str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: &str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(what, path, e))
    }
}
