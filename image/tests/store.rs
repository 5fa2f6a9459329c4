//! The store with hand-made archives: formats, names, resolve, retag,
//! remove, layers and whiteouts, caching, concurrent loads.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::Arc;

use common::*;
use podvm_image::{Compression, Error, ImageStore};
use serde_json::json;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

fn two_layer_image() -> TestImage {
    let lower = layer(&[
        E::Dir("etc/"),
        E::File("etc/motd", b"hi"),
        E::File("etc/keep", b"keep"),
        E::File("opt/app/old", b"old"),
        E::File("opt/app/sub/old2", b"old2"),
    ]);
    let upper = layer(&[
        E::File("etc/.wh.motd", b""),
        E::File("opt/app/new", b"new"),
        E::File("opt/app/.wh..wh..opq", b""),
        E::Hardlink("etc/keep-link", "etc/keep"),
    ]);
    image(
        &[lower, upper],
        &[true, false],
        json!({"Entrypoint": ["/bin/app"], "Cmd": ["--flag"], "Env": ["A=1"], "User": "1000", "WorkingDir": "/opt"}),
    )
}

#[test]
fn oci_and_docker_archives_of_one_image_agree() {
    let (dir, store) = store();
    let img = two_layer_image();
    let oci = dir.path().join("oci.tar");
    oci_archive(&oci, &img, "docker.io/test/app:1");
    let recs = store.load(&oci).unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.names, ["docker.io/test/app:1"]);
    assert_eq!(rec.id, img.id());
    assert_eq!(rec.manifest_digest, sha(&img.manifest));
    assert_eq!(rec.config.entrypoint, ["/bin/app"]);
    assert_eq!(rec.config.cmd, ["--flag"]);
    assert_eq!(rec.config.env, ["A=1"]);
    assert_eq!(rec.config.user.as_deref(), Some("1000"));
    assert_eq!(rec.config.working_dir.as_deref(), Some("/opt"));
    assert_eq!(rec.created.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(
        rec.size,
        img.layers.iter().map(|l| l.len() as u64).sum::<u64>()
    );
    assert_eq!(rec.layers[0].compression, Compression::Gzip);
    assert_eq!(rec.layers[1].compression, Compression::None);

    let (_dir2, store2) = store_pair();
    let docker = dir.path().join("docker.tar");
    docker_archive(&docker, &[(&img, &["test/app:2"])]);
    let drec = store2.load(&docker).unwrap().remove(0);
    assert_eq!(drec.id, rec.id);
    assert_eq!(drec.names, ["docker.io/test/app:2"]);
    assert_eq!(drec.config, rec.config);

    // Same store: the second load only adds the name.
    let both = store.load(&docker).unwrap().remove(0);
    assert_eq!(both.names, ["docker.io/test/app:1", "docker.io/test/app:2"]);
    assert_eq!(store.list().unwrap().len(), 1);

    for s in [&store, &store2] {
        let rec = s.resolve("test/app:2").unwrap();
        let root = s.rootfs_dir(&rec).unwrap();
        assert!(!root.join("etc/motd").exists(), "whiteout not applied");
        assert_eq!(fs::read(root.join("etc/keep-link")).unwrap(), b"keep");
        let mut app: Vec<_> = fs::read_dir(root.join("opt/app"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        app.sort();
        assert_eq!(
            app,
            ["new"],
            "opaque dir must hide the lower layer's entries"
        );
    }
}

fn store_pair() -> (tempfile::TempDir, ImageStore) {
    store()
}

#[test]
fn resolves_by_name_id_and_prefix() {
    let (dir, store) = store();
    let img = simple_image("f", b"x");
    let path = dir.path().join("a.tar");
    oci_archive(&path, &img, "docker.io/library/busybox:latest");
    let rec = store.load(&path).unwrap().remove(0);
    for reference in [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
        &rec.id,
        rec.id_hex(),
        &rec.id_hex()[..12],
        &format!("busybox@{}", rec.manifest_digest),
    ] {
        assert_eq!(store.resolve(reference).unwrap().id, rec.id, "{reference}");
    }
    assert!(matches!(
        store.resolve("busybox:1"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.resolve(&rec.id_hex()[..11]),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.resolve(&format!("sha256:{}", "0".repeat(64))),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.resolve("Bad Name"),
        Err(Error::InvalidReference { .. })
    ));
}

#[test]
fn names_from_annotations() {
    let (dir, store) = store();
    let a = simple_image("a", b"a");
    let b = simple_image("b", b"b");
    let c = simple_image("c", b"c");
    let index = vec![
        index_entry(&a, json!({"org.opencontainers.image.ref.name": "latest"})),
        index_entry(
            &b,
            json!({"org.opencontainers.image.ref.name": "1.0", "io.containerd.image.name": "quay.io/x/b:1.0"}),
        ),
        index_entry(
            &c,
            json!({"org.opencontainers.image.ref.name": "localhost:5000/c"}),
        ),
    ];
    let path = dir.path().join("multi.tar");
    write_tar(&path, &oci_files(&[&a, &b, &c], index));
    let recs = store.load(&path).unwrap();
    assert_eq!(recs.len(), 3);
    assert!(recs[0].names.is_empty());
    assert!(
        recs[0].warnings[0].contains("only by the tag \"latest\""),
        "{:?}",
        recs[0].warnings
    );
    assert_eq!(store.resolve(&recs[0].id).unwrap().id, a.id());
    assert_eq!(recs[1].names, ["quay.io/x/b:1.0"]);
    assert!(recs[1].warnings.is_empty());
    assert_eq!(recs[2].names, ["localhost:5000/c:latest"]);
}

#[test]
fn nested_index_picks_linux_amd64() {
    let (dir, store) = store();
    let amd = simple_image("amd", b"amd");
    let arm_manifest = br#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":[]}"#.to_vec();
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&arm_manifest), "size": arm_manifest.len(),
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&amd.manifest), "size": amd.manifest.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }))
    .unwrap();
    let index = vec![json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": sha(&nested), "size": nested.len(),
        "annotations": {"org.opencontainers.image.ref.name": "docker.io/test/multi:1"},
    })];
    let mut files = oci_files(&[&amd], index);
    files.push((format!("blobs/sha256/{}", sha_hex(&nested)), nested));
    files.push((
        format!("blobs/sha256/{}", sha_hex(&arm_manifest)),
        arm_manifest,
    ));
    let path = dir.path().join("nested.tar");
    write_tar(&path, &files);
    let rec = store.load(&path).unwrap().remove(0);
    assert_eq!(rec.id, amd.id());
    assert_eq!(rec.names, ["docker.io/test/multi:1"]);
}

#[test]
fn loading_a_used_name_retags_it() {
    let (dir, store) = store();
    let a = simple_image("a", b"a");
    let b = simple_image("b", b"b");
    let (pa, pb) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    oci_archive(&pa, &a, "docker.io/test/x:1");
    oci_archive(&pb, &b, "docker.io/test/x:1");
    store.load(&pa).unwrap();
    store.load(&pb).unwrap();
    assert_eq!(store.resolve("test/x:1").unwrap().id, b.id());
    let old = store.resolve(&a.id()).unwrap();
    assert!(old.names.is_empty());
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn remove_untags_then_deletes_unshared_data() {
    let (dir, store) = store();
    let shared = layer(&[E::File("shared", b"s")]);
    let a = image(
        &[shared.clone(), layer(&[E::File("a", b"a")])],
        &[true, true],
        json!({}),
    );
    let b = image(
        &[shared, layer(&[E::File("b", b"b")])],
        &[true, true],
        json!({}),
    );
    let (pa, pb) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    docker_archive(&pa, &[(&a, &["test/a:1", "test/a:2"])]);
    oci_archive(&pb, &b, "docker.io/test/b:1");
    let ra = store.load(&pa).unwrap().remove(0);
    store.load(&pb).unwrap();
    let tree = store.rootfs_dir(&ra).unwrap();
    let blob = |d: &str| {
        store
            .root()
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    store.remove("test/a:1").unwrap();
    assert_eq!(store.resolve(&ra.id).unwrap().names, ["docker.io/test/a:2"]);
    store.remove("test/a:2").unwrap();
    assert!(matches!(store.resolve(&ra.id), Err(Error::NotFound(_))));
    assert!(!tree.exists());
    assert!(!blob(&ra.id).exists());
    assert!(!blob(&ra.manifest_digest).exists());
    assert!(!blob(&ra.layers[1].digest).exists());
    assert!(
        blob(&ra.layers[0].digest).exists(),
        "layer shared with b must stay"
    );
    let rb = store.resolve("test/b:1").unwrap();
    store.remove(&rb.id_hex()[..12]).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        fs::read_dir(store.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn rootfs_and_disk_are_cached() {
    let (dir, store) = store();
    let img = two_layer_image();
    let path = dir.path().join("a.tar");
    oci_archive(&path, &img, "docker.io/test/app:1");
    let rec = store.load(&path).unwrap().remove(0);
    let tree = store.rootfs_dir(&rec).unwrap();
    assert_eq!(tree, store.root().join("rootfs").join(rec.id_hex()));
    assert_eq!(store.rootfs_dir(&rec).unwrap(), tree);
    if which("mkfs.erofs") {
        let disk = store.disk_image(&rec).unwrap();
        assert_eq!(
            disk,
            store
                .root()
                .join("disks")
                .join(format!("{}.erofs", rec.id_hex()))
        );
        let mtime = fs::metadata(&disk).unwrap().modified().unwrap();
        let start = std::time::Instant::now();
        assert_eq!(store.disk_image(&rec).unwrap(), disk);
        assert!(start.elapsed().as_millis() < 100);
        assert_eq!(fs::metadata(&disk).unwrap().modified().unwrap(), mtime);
        let leftovers: Vec<_> = fs::read_dir(store.root().join("disks"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    } else {
        podvm_testsupport::skip(
            "EROFS disk image",
            "mkfs.erofs not installed (apt-get install erofs-utils)",
        );
    }
}

#[test]
fn concurrent_loads_both_land_in_the_index() {
    for round in 0..4 {
        let (dir, store) = store();
        let store = Arc::new(store);
        let mut handles = Vec::new();
        for i in 0..2 {
            let img = simple_image(
                &format!("file{i}"),
                format!("round {round} image {i}").as_bytes(),
            );
            let path = dir.path().join(format!("{i}.tar"));
            oci_archive(&path, &img, &format!("docker.io/test/c{i}:latest"));
            let store = Arc::clone(&store);
            handles.push(std::thread::spawn(move || store.load(&path).unwrap()));
        }
        for h in handles {
            h.join().unwrap();
        }
        let names: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .flat_map(|r| r.names)
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        store.resolve("test/c0").unwrap();
        store.resolve("test/c1").unwrap();
    }
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}
