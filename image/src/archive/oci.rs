//! OCI image archives (a tar of an OCI image layout): `oci-layout`,
//! `index.json` and `blobs/sha256/…`. Index entries may be manifests or
//! nested indexes (linux/amd64 is picked); names come from the
//! `io.containerd.image.name` and `org.opencontainers.image.ref.name`
//! annotations.

use serde::Deserialize;

use super::{Candidate, CandidateLayer, StagedArchive, StagedFile};
use crate::error::{Error, Result};
use crate::manifest::{
    is_index_type, is_manifest_type, parse_json, Descriptor, Index, Manifest,
    ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME,
};
use crate::reference::normalize_reference;

/// Deepest nesting of indexes followed.
const MAX_INDEX_DEPTH: usize = 4;
/// Most entries an index may have.
const MAX_INDEX_ENTRIES: usize = 1024;

/// The `oci-layout` file.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Layout {
    image_layout_version: String,
}

/// Describes every linux/amd64 image of an OCI archive.
pub(super) fn read(staged: &StagedArchive) -> Result<Vec<Candidate>> {
    let layout_file = staged.file("oci-layout")?;
    let layout: Layout = parse_json(&staged.read_small(layout_file, "oci-layout")?, "oci-layout")?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(staged.invalid(format!(
            "unsupported OCI layout version {:?}",
            layout.image_layout_version
        )));
    }
    let index_file = staged.file("index.json")?;
    let index: Index = parse_json(&staged.read_small(index_file, "index.json")?, "index.json")?;
    check_index(staged, &index, "index.json")?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for desc in &index.manifests {
        if let Some(p) = desc.platform.as_ref().filter(|p| !p.is_linux_amd64()) {
            skipped.push(format!("{}/{}", p.os, p.architecture));
            continue;
        }
        let (manifest_file, manifest) = select_manifest(staged, desc, 0)?;
        let (names, warnings) = names_of(desc);
        let config = staged.blob(&manifest.config, "config")?.clone();
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for layer in &manifest.layers {
            layers.push(CandidateLayer {
                file: staged.blob(layer, "layer")?.clone(),
                media_type: layer.media_type.clone(),
            });
        }
        out.push(Candidate {
            names,
            warnings,
            manifest: Some(manifest_file),
            config,
            layers,
        });
    }
    if out.is_empty() {
        return Err(Error::Platform(format!(
            "archive {} has no linux/amd64 image (found: {})",
            staged.name,
            if skipped.is_empty() {
                "none".to_string()
            } else {
                skipped.join(", ")
            }
        )));
    }
    Ok(out)
}

/// Checks an index's schema version and size.
fn check_index(staged: &StagedArchive, index: &Index, what: &str) -> Result<()> {
    if index.schema_version != 2 {
        return Err(staged.invalid(format!(
            "{what}: schemaVersion {}, expected 2",
            index.schema_version
        )));
    }
    if index.manifests.is_empty() {
        return Err(staged.invalid(format!("{what} lists no manifests")));
    }
    if index.manifests.len() > MAX_INDEX_ENTRIES {
        return Err(staged.invalid(format!(
            "{what} lists more than {MAX_INDEX_ENTRIES} manifests"
        )));
    }
    Ok(())
}

/// Follows `desc` (a manifest, or an index to pick linux/amd64 from) to an
/// image manifest.
fn select_manifest(
    staged: &StagedArchive,
    desc: &Descriptor,
    depth: usize,
) -> Result<(StagedFile, Manifest)> {
    if is_index_type(&desc.media_type) {
        if depth >= MAX_INDEX_DEPTH {
            return Err(staged.invalid(format!(
                "image indexes nested deeper than {MAX_INDEX_DEPTH}"
            )));
        }
        let file = staged.blob(desc, "image index")?;
        let what = format!("image index {}", file.digest);
        let index: Index = parse_json(&staged.read_small(file, &what)?, &what)?;
        check_index(staged, &index, &what)?;
        let chosen = index
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.is_linux_amd64()))
            .or_else(|| match index.manifests.as_slice() {
                [only] if only.platform.is_none() => Some(only),
                _ => None,
            });
        let Some(chosen) = chosen else {
            let found: Vec<String> = index
                .manifests
                .iter()
                .map(|d| {
                    d.platform.as_ref().map_or("unspecified".to_string(), |p| {
                        format!("{}/{}", p.os, p.architecture)
                    })
                })
                .collect();
            return Err(Error::Platform(format!(
                "{what} has no linux/amd64 entry (found: {})",
                found.join(", ")
            )));
        };
        return select_manifest(staged, chosen, depth + 1);
    }
    if !is_manifest_type(&desc.media_type) {
        return Err(staged.invalid(format!(
            "index entry {} has unsupported media type {:?}",
            desc.digest, desc.media_type
        )));
    }
    let file = staged.blob(desc, "manifest")?;
    let what = format!("manifest {}", file.digest);
    let manifest: Manifest = parse_json(&staged.read_small(file, &what)?, &what)?;
    if manifest.schema_version != 2 {
        return Err(staged.invalid(format!(
            "{what}: schemaVersion {}, expected 2",
            manifest.schema_version
        )));
    }
    if manifest.layers.len() > staged.limits().max_layers {
        return Err(Error::TooLarge {
            what: format!("{what} (layer count)"),
            size: manifest.layers.len() as u64,
            limit: staged.limits().max_layers as u64,
        });
    }
    Ok((file.clone(), manifest))
}

/// The names an index entry gives its image, and warnings about names that
/// could not be used.
fn names_of(desc: &Descriptor) -> (Vec<String>, Vec<String>) {
    let mut names = Vec::new();
    let mut warnings = Vec::new();
    fn add(raw: &str, names: &mut Vec<String>, warnings: &mut Vec<String>) {
        match normalize_reference(raw) {
            Ok(n) if !names.contains(&n) => names.push(n),
            Ok(_) => {}
            Err(e) => warnings.push(format!("ignored name {raw:?}: {e}")),
        }
    }
    if let Some(name) = desc.annotations.get(ANNOTATION_CONTAINERD_NAME) {
        add(name, &mut names, &mut warnings);
    }
    match desc.annotations.get(ANNOTATION_REF_NAME) {
        Some(r) if r.contains(['/', ':', '@']) => add(r, &mut names, &mut warnings),
        Some(tag) if names.is_empty() => warnings.push(format!(
            "the archive names this image only by the tag {tag:?}, with no repository; imported without a name (use its id)"
        )),
        Some(_) => {}
        None if names.is_empty() => {
            warnings.push("the archive gives this image no name; imported without a name (use its id)".to_string())
        }
        None => {}
    }
    (names, warnings)
}
