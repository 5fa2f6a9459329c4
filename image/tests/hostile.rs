//! Hostile and broken archives: every one is refused with a clear error and
//! leaves the store as it was.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use podvm_image::{Error, ImageStore, Limits};
use serde_json::json;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// Loads `files` as an OCI archive; returns the error.
fn load_files(store: &ImageStore, dir: &std::path::Path, files: &[(String, Vec<u8>)]) -> Error {
    let path = dir.join("bad.tar");
    write_tar(&path, files);
    store.load(&path).unwrap_err()
}

#[test]
fn corrupted_blob_is_refused() {
    let (dir, store) = store();
    let img = simple_image("etc/file", b"content");
    let mut files = oci_files(&[&img], vec![index_entry(&img, json!({}))]);
    let layer_name = format!("blobs/sha256/{}", sha_hex(&img.layers[0]));
    let layer = files.iter_mut().find(|(n, _)| *n == layer_name).unwrap();
    let mid = layer.1.len() / 2;
    layer.1[mid] ^= 0x01;
    let err = load_files(&store, dir.path(), &files);
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&layer_name), "{err}");
    assert_store_empty(&store);
}

#[test]
fn size_mismatch_is_refused() {
    let (dir, store) = store();
    let img = simple_image("etc/file", b"content");
    let mut entry = index_entry(&img, json!({}));
    entry["size"] = json!(img.manifest.len() + 1);
    let err = load_files(&store, dir.path(), &oci_files(&[&img], vec![entry]));
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert_store_empty(&store);
}

#[test]
fn wrong_diff_id_is_refused() {
    let (dir, store) = store();
    let l = layer(&[E::File("a", b"a")]);
    let img = image_with_diff_ids(&[l], &[true], json!({}), vec![sha(b"something else")]);
    let err = load_files(
        &store,
        dir.path(),
        &oci_files(&[&img], vec![index_entry(&img, json!({}))]),
    );
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("diff_ids"), "{err}");
    assert_store_empty(&store);
}

#[test]
fn escaping_entries_are_refused_at_load() {
    for (entries, want) in [
        (vec![E::File("../escape", b"x")], ".."),
        (vec![E::File("a/../../escape", b"x")], ".."),
        (
            vec![E::File("etc/x", b"x"), E::Hardlink("h", "../../etc/passwd")],
            "..",
        ),
    ] {
        let (dir, store) = store();
        let img = image(&[layer(&entries)], &[false], json!({}));
        let err = load_files(
            &store,
            dir.path(),
            &oci_files(&[&img], vec![index_entry(&img, json!({}))]),
        );
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        assert!(err.to_string().contains(want), "{err}");
        assert_store_empty(&store);
        assert!(!dir.path().join("escape").exists());
    }
}

#[test]
fn symlink_parent_is_refused_at_unpack() {
    let (dir, store) = store();
    let evil = "link/etc/podvm-image-test-evil";
    let img = image(
        &[layer(&[E::Symlink("link", "/"), E::File(evil, b"x")])],
        &[false],
        json!({}),
    );
    let path = dir.path().join("a.tar");
    oci_archive(&path, &img, "docker.io/test/symlink:1");
    let rec = store.load(&path).unwrap().remove(0);
    let err = store.rootfs_dir(&rec).unwrap_err();
    assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
    assert!(err.to_string().contains("symlink"), "{err}");
    assert!(!std::path::Path::new("/etc/podvm-image-test-evil").exists());
    assert!(!store.root().join("rootfs").join(rec.id_hex()).exists());
    assert_eq!(
        std::fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0
    );
}

#[test]
fn absolute_paths_are_made_relative() {
    let (dir, store) = store();
    let img = image(&[layer(&[E::File("/etc/abs", b"abs")])], &[true], json!({}));
    let path = dir.path().join("a.tar");
    oci_archive(&path, &img, "docker.io/test/abs:1");
    let rec = store.load(&path).unwrap().remove(0);
    let root = store.rootfs_dir(&rec).unwrap();
    assert_eq!(std::fs::read(root.join("etc/abs")).unwrap(), b"abs");
}

#[test]
fn zstd_layers_are_refused() {
    let zstd_blob = [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0].to_vec();
    for media_type in [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ] {
        let (dir, store) = store();
        let mut img = image(&[layer(&[])], &[false], json!({}));
        img.layers[0] = zstd_blob.clone();
        img.layer_types[0] = media_type.to_string();
        img.manifest = manifest_of(&img);
        let err = load_files(
            &store,
            dir.path(),
            &oci_files(&[&img], vec![index_entry(&img, json!({}))]),
        );
        assert!(matches!(err, Error::UnsupportedCompression { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("unsupported layer compression zstd"),
            "{err}"
        );
        assert_store_empty(&store);
    }
}

#[test]
fn truncated_archive_is_refused() {
    let (dir, store) = store();
    let big = vec![b'x'; 64 * 1024];
    let img = simple_image("big", &big);
    let path = dir.path().join("t.tar");
    oci_archive(&path, &img, "docker.io/test/t:1");
    let len = std::fs::metadata(&path).unwrap().len();
    let bytes = std::fs::read(&path).unwrap();
    // Cut inside the last member's data, then at a header.
    for cut in [len as usize - 1024 - 100, 512 + 100] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = store.load(&path).unwrap_err();
        assert!(matches!(err, Error::InvalidArchive { .. }), "{err}");
        assert_store_empty(&store);
    }
}

#[test]
fn truncated_layer_is_refused() {
    let (dir, store) = store();
    let mut l = layer(&[E::File("big", &[7u8; 8192])]);
    l.truncate(512 + 4096);
    let img = image(&[l], &[true], json!({}));
    let err = load_files(
        &store,
        dir.path(),
        &oci_files(&[&img], vec![index_entry(&img, json!({}))]),
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_store_empty(&store);
}

#[test]
fn huge_declared_size_is_refused() {
    let (dir, store) = store();
    let mut h = tar::Header::new_gnu();
    h.set_path("blobs/sha256/huge").unwrap();
    h.set_size(1 << 50);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 4096]);
    let path = dir.path().join("huge.tar");
    std::fs::write(&path, &bytes).unwrap();
    let err = store.load(&path).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_store_empty(&store);

    let small = ImageStore::open_with_limits(
        &dir.path().join("small"),
        Limits {
            max_blob_bytes: 100,
            ..Limits::default()
        },
    )
    .unwrap();
    let img = simple_image("f", &[1u8; 4096]);
    let path = dir.path().join("ok.tar");
    oci_archive(&path, &img, "docker.io/test/ok:1");
    let err = small.load(&path).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn gzip_bomb_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open_with_limits(
        &dir.path().join("store"),
        Limits {
            max_layer_bytes: 64 * 1024,
            ..Limits::default()
        },
    )
    .unwrap();
    let img = simple_image("zeros", &vec![0u8; 1 << 20]);
    let path = dir.path().join("bomb.tar");
    oci_archive(&path, &img, "docker.io/test/bomb:1");
    let err = store.load(&path).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    assert_store_empty(&store);
}

#[test]
fn other_digest_algorithms_and_junk_are_refused() {
    let (dir, store) = store();
    let img = simple_image("f", b"x");
    let mut entry = index_entry(&img, json!({}));
    entry["digest"] = json!(format!("sha512:{}", "a".repeat(128)));
    let err = load_files(&store, dir.path(), &oci_files(&[&img], vec![entry]));
    assert!(matches!(err, Error::UnsupportedDigest { .. }), "{err}");

    let path = dir.path().join("junk.tar");
    std::fs::write(&path, vec![0x55u8; 2048]).unwrap();
    assert!(store.load(&path).is_err());
    write_tar(&path, &[("hello.txt".to_string(), b"hi".to_vec())]);
    let err = store.load(&path).unwrap_err();
    assert!(
        err.to_string().contains("neither an OCI image archive"),
        "{err}"
    );
    assert_store_empty(&store);
}

#[test]
fn other_platforms_are_refused() {
    let (dir, store) = store();
    let img = simple_image("f", b"x");
    let mut entry = index_entry(&img, json!({}));
    entry["platform"] = json!({"os": "linux", "architecture": "arm64"});
    let err = load_files(&store, dir.path(), &oci_files(&[&img], vec![entry]));
    assert!(matches!(err, Error::Platform(_)), "{err}");
    assert!(err.to_string().contains("linux/arm64"), "{err}");
    assert_store_empty(&store);
}
