//! Helpers for the integration tests: hand-made layers, images, OCI and
//! docker archives (member names written raw, so hostile ones survive).

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

/// `sha256:<hex>` of `bytes`.
pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of [`sha`].
pub fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// One entry of a hand-made layer.
pub enum E<'a> {
    /// A regular file.
    File(&'a str, &'a [u8]),
    /// A directory.
    Dir(&'a str),
    /// A symlink.
    Symlink(&'a str, &'a str),
    /// A hardlink.
    Hardlink(&'a str, &'a str),
}

/// A tar of `entries` with raw names.
pub fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_gnu();
        let (name, kind, data, mode): (&str, EntryType, &[u8], u32) = match e {
            E::File(n, d) => (n, EntryType::Regular, d, 0o644),
            E::Dir(n) => (n, EntryType::Directory, b"", 0o755),
            E::Symlink(n, t) => {
                h.set_link_name_literal(t).unwrap();
                (n, EntryType::Symlink, b"", 0o777)
            }
            E::Hardlink(n, t) => {
                h.set_link_name_literal(t).unwrap();
                (n, EntryType::Link, b"", 0o644)
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A hand-made image: config, layer blobs, manifest.
#[derive(Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub layer_types: Vec<String>,
    pub manifest: Vec<u8>,
}

impl TestImage {
    /// The image id (config digest).
    pub fn id(&self) -> String {
        sha(&self.config)
    }
}

/// An image of uncompressed `layers` (gzipped where `gz[i]`), with `run`
/// as the config's `config` member.
pub fn image(layers: &[Vec<u8>], gz: &[bool], run: Value) -> TestImage {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    image_with_diff_ids(layers, gz, run, diff_ids)
}

/// Like [`image`] with explicit diff_ids (to make them wrong).
pub fn image_with_diff_ids(
    layers: &[Vec<u8>],
    gz: &[bool],
    run: Value,
    diff_ids: Vec<String>,
) -> TestImage {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let mut blobs = Vec::new();
    let mut types = Vec::new();
    for (l, z) in layers.iter().zip(gz) {
        if *z {
            blobs.push(gzip(l));
            types.push("application/vnd.oci.image.layer.v1.tar+gzip".to_string());
        } else {
            blobs.push(l.clone());
            types.push("application/vnd.oci.image.layer.v1.tar".to_string());
        }
    }
    let mut img = TestImage {
        config,
        layers: blobs,
        layer_types: types,
        manifest: Vec::new(),
    };
    img.manifest = manifest_of(&img);
    img
}

/// The OCI manifest of an image's config and layers.
pub fn manifest_of(img: &TestImage) -> Vec<u8> {
    let layers: Vec<Value> = img
        .layers
        .iter()
        .zip(&img.layer_types)
        .map(|(l, t)| json!({"mediaType": t, "digest": sha(l), "size": l.len()}))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&img.config), "size": img.config.len()},
        "layers": layers,
    }))
    .unwrap()
}

/// An index.json entry for an image, with annotations.
pub fn index_entry(img: &TestImage, annotations: Value) -> Value {
    json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sha(&img.manifest), "size": img.manifest.len(),
        "annotations": annotations,
    })
}

/// The members of an OCI archive holding `images` with `index` as index.json.
pub fn oci_files(images: &[&TestImage], index: Vec<Value>) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (
            "index.json".to_string(),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index})).unwrap(),
        ),
    ];
    for img in images {
        for blob in [&img.manifest, &img.config].into_iter().chain(&img.layers) {
            let name = format!("blobs/sha256/{}", sha_hex(blob));
            if !files.iter().any(|(n, _)| *n == name) {
                files.push((name, blob.clone()));
            }
        }
    }
    files
}

/// An OCI archive of one image named by `ref_name`.
pub fn oci_archive(path: &Path, img: &TestImage, ref_name: &str) {
    let index = vec![index_entry(
        img,
        json!({"org.opencontainers.image.ref.name": ref_name}),
    )];
    write_tar(path, &oci_files(&[img], index));
}

/// A docker-archive of `images` with their tags (layers as `<n>/layer.tar`
/// symlinks to `<hex>.tar`, as skopeo writes them).
pub fn docker_archive(path: &Path, images: &[(&TestImage, &[&str])]) {
    let mut files = Vec::new();
    let mut links = Vec::new();
    let mut manifest = Vec::new();
    for (i, (img, tags)) in images.iter().enumerate() {
        let config_name = format!("{}.json", sha_hex(&img.config));
        files.push((config_name.clone(), img.config.clone()));
        let mut layers = Vec::new();
        for (j, l) in img.layers.iter().enumerate() {
            let real = format!("{}.tar", sha_hex(l));
            files.push((real.clone(), l.clone()));
            let link = format!("{i}{j}/layer.tar");
            links.push((link.clone(), format!("../{real}")));
            layers.push(link);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
    }
    files.push((
        "manifest.json".to_string(),
        serde_json::to_vec(&manifest).unwrap(),
    ));
    write_tar_with_links(path, &files, &links);
}

/// Writes a tar of regular files.
pub fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    write_tar_with_links(path, files, &[]);
}

/// Writes a tar of regular files and symlinks.
pub fn write_tar_with_links(path: &Path, files: &[(String, Vec<u8>)], links: &[(String, String)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in files {
        let mut h = Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    for (name, target) in links {
        let mut h = Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_link_name_literal(target).unwrap();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(EntryType::Symlink);
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    b.into_inner().unwrap();
}

/// Asserts that the store holds nothing: no images, blobs or staging leftovers.
pub fn assert_store_empty(store: &podvm_image::ImageStore) {
    assert!(
        store.list().unwrap().is_empty(),
        "images listed after a failed load"
    );
    let blobs: Vec<_> = std::fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .collect();
    assert!(
        blobs.is_empty(),
        "blobs left after a failed load: {blobs:?}"
    );
    let tmp: Vec<_> = std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .collect();
    assert!(tmp.is_empty(), "staging left after a failed load: {tmp:?}");
}

/// A simple one-layer image with one file.
pub fn simple_image(file: &str, content: &[u8]) -> TestImage {
    image(
        &[layer(&[E::File(file, content)])],
        &[true],
        json!({"Cmd": ["sh"]}),
    )
}
