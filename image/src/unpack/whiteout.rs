//! OCI whiteouts: `.wh.<name>` deletes `<name>` from the lower layers;
//! `.wh..wh..opq` makes its directory opaque, hiding everything the lower
//! layers had there while keeping what the same layer adds (in either
//! order within the layer).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::path::{check_parents, remove_any, Parents};
use super::Unpacker;

/// The marker that makes a directory opaque.
const OPAQUE: &[u8] = b".wh..wh..opq";

impl Unpacker {
    /// Applies the whiteout entry `rel` whose name is `.wh.<hidden>`.
    pub(super) fn whiteout(&mut self, rel: &Path, hidden: &[u8]) -> Result<(), String> {
        let dir = rel.parent().unwrap_or(Path::new(""));
        if rel.file_name().map(OsStr::as_bytes) == Some(OPAQUE) {
            check_parents(&self.root, rel, true)?;
            self.written.extend(dir.ancestors().map(Path::to_path_buf));
            return self.make_opaque(dir);
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err("whiteout of an invalid name".to_string());
        }
        if hidden.starts_with(b".wh.") {
            return Err("whiteout of a whiteout name".to_string());
        }
        let target = dir.join(OsStr::from_bytes(hidden));
        if self.written.contains(&target) {
            // The same layer added it: a whiteout only hides lower layers.
            return Ok(());
        }
        match check_parents(&self.root, &target, false)? {
            Parents::Missing => Ok(()),
            Parents::Ready => {
                let full = self.root.join(&target);
                remove_any(&full).map_err(|e| format!("removing {}: {e}", target.display()))
            }
        }
    }

    /// Removes everything under `dir` that the current layer did not write.
    fn make_opaque(&self, dir: &Path) -> Result<(), String> {
        let full = self.root.join(dir);
        let entries = fs::read_dir(&full).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for child in entries {
            let child = child.map_err(|e| format!("reading {}: {e}", dir.display()))?;
            let rel = dir.join(child.file_name());
            let file_type = child
                .file_type()
                .map_err(|e| format!("inspecting {}: {e}", rel.display()))?;
            if !self.written.contains(&rel) {
                remove_any(&child.path())
                    .map_err(|e| format!("removing {}: {e}", rel.display()))?;
            } else if file_type.is_dir() {
                self.make_opaque(&rel)?;
            }
        }
        Ok(())
    }
}
