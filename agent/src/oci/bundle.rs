//! A container's bundle, as runc has it: a directory with `config.json`
//! (the spec) and `rootfs` (the root the spec's relative `root.path`
//! names).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use super::{parse, SpecError};

/// The spec's file in a bundle.
pub const CONFIG: &str = "config.json";
/// Largest `config.json` read back.
const MAX_CONFIG: u64 = 4 * 1024 * 1024;

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("config.json: {0}")]
    Spec(#[from] SpecError),
}

/// Writes `spec` as `bundle/config.json` (readable by root only).
pub fn write(bundle: &Path, spec: &Spec) -> Result<(), BundleError> {
    let path = bundle.join(CONFIG);
    let io_err = |source| BundleError::Io {
        path: path.clone(),
        source,
    };
    let json = serde_json::to_vec_pretty(spec).map_err(|e| io_err(io::Error::other(e)))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err)?;
    file.write_all(&json).map_err(io_err)?;
    Ok(())
}

/// Reads `bundle/config.json`.
pub fn read(bundle: &Path) -> Result<Spec, BundleError> {
    let path = bundle.join(CONFIG);
    let mut json = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(MAX_CONFIG).read_to_end(&mut json))
        .map_err(|source| BundleError::Io {
            path: path.clone(),
            source,
        })?;
    Ok(parse(&json)?)
}

/// The spec's root as an absolute path (a relative `root.path` is the
/// bundle's, as runc reads it).
pub fn root_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let root = spec.root().as_ref().map_or_else(
        || PathBuf::from(super::sandbox::ROOTFS),
        |r| r.path().clone(),
    );
    bundle.join(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = Spec::default();
        write(tmp.path(), &spec).unwrap();
        assert_eq!(read(tmp.path()).unwrap(), spec);
        assert_eq!(root_path(tmp.path(), &spec), tmp.path().join("rootfs"));
        fs::write(tmp.path().join(CONFIG), "{").unwrap();
        assert!(matches!(read(tmp.path()), Err(BundleError::Spec(_))));
        fs::remove_dir_all(tmp.path()).unwrap();
        assert!(matches!(read(tmp.path()), Err(BundleError::Io { .. })));
    }
}
