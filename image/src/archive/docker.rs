//! docker-archive (as written by `docker save`, `podman save`, `skopeo copy
//! … docker-archive:`): `manifest.json` lists each image's `Config`,
//! `RepoTags` and `Layers` as paths inside the archive (`<id>/layer.tar`,
//! `<hex>.tar` or `blobs/sha256/<hex>`). There is no manifest blob; the
//! config digest is computed from the config file.

use serde::Deserialize;

use super::{Candidate, CandidateLayer, StagedArchive};
use crate::error::{Error, Result};
use crate::manifest::parse_json;
use crate::reference::normalize_reference;

/// Most images one `manifest.json` may list.
const MAX_IMAGES: usize = 1024;

/// One entry of `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Describes every image of a docker-archive.
pub(super) fn read(staged: &StagedArchive) -> Result<Vec<Candidate>> {
    let file = staged.file("manifest.json")?;
    let entries: Vec<Entry> =
        parse_json(&staged.read_small(file, "manifest.json")?, "manifest.json")?;
    if entries.is_empty() {
        return Err(staged.invalid("manifest.json lists no images"));
    }
    if entries.len() > MAX_IMAGES {
        return Err(staged.invalid(format!("manifest.json lists more than {MAX_IMAGES} images")));
    }
    entries.iter().map(|e| candidate(staged, e)).collect()
}

/// Describes one `manifest.json` entry.
fn candidate(staged: &StagedArchive, entry: &Entry) -> Result<Candidate> {
    let config = staged.file(&entry.config)?.clone();
    let stem = entry
        .config
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".json");
    let named_by_digest = stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit());
    if named_by_digest && stem != config.digest.hex() {
        return Err(Error::DigestMismatch {
            what: format!("config {} in archive {}", entry.config, staged.name),
            expected: format!("sha256:{stem}"),
            actual: config.digest.to_string(),
        });
    }
    if entry.layers.len() > staged.limits().max_layers {
        return Err(Error::TooLarge {
            what: format!("image {} (layer count)", config.digest),
            size: entry.layers.len() as u64,
            limit: staged.limits().max_layers as u64,
        });
    }
    let layers = entry
        .layers
        .iter()
        .map(|path| {
            Ok(CandidateLayer {
                file: staged.file(path)?.clone(),
                media_type: String::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut names = Vec::new();
    let mut warnings = Vec::new();
    for tag in entry.repo_tags.iter().flatten() {
        match normalize_reference(tag) {
            Ok(n) if !names.contains(&n) => names.push(n),
            Ok(_) => {}
            Err(e) => warnings.push(format!("ignored name {tag:?}: {e}")),
        }
    }
    if names.is_empty() {
        warnings.push(
            "the archive gives this image no name; imported without a name (use its id)"
                .to_string(),
        );
    }
    Ok(Candidate {
        names,
        warnings,
        manifest: None,
        config,
        layers,
    })
}
