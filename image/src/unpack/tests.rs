//! Unit tests of layer extraction: metadata, every entry kind, escapes,
//! whiteouts and opaque directories.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::*;

/// One entry of a hand-made layer.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    Char(&'a str, u32, u32),
}

/// A tar of `entries`, names written raw (so `..` and `/` survive).
fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = Header::new_gnu();
        let (name, kind, data, mode): (&str, EntryType, &[u8], u32) = match e {
            E::Dir(n, m) => (n, EntryType::Directory, b"", *m),
            E::File(n, d, m) => (n, EntryType::Regular, d, *m),
            E::Symlink(n, t) => {
                h.set_link_name_literal(t).unwrap();
                (n, EntryType::Symlink, b"", 0o777)
            }
            E::Hardlink(n, t) => {
                h.set_link_name_literal(t).unwrap();
                (n, EntryType::Link, b"", 0o644)
            }
            E::Fifo(n) => (n, EntryType::Fifo, b"", 0o600),
            E::Char(n, major, minor) => {
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (n, EntryType::Char, b"", 0o666)
            }
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(2000);
        h.set_mtime(1_000_000);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A fresh `root` inside a scratch dir (so escapes would land beside it).
fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs::create_dir(&root).unwrap();
    (dir, root)
}

fn unpack(root: &Path, layers: &[Vec<u8>]) -> Result<()> {
    let mut u = Unpacker::new(root, 1000)?;
    for (i, l) in layers.iter().enumerate() {
        u.apply_layer(&l[..], &format!("layer{i}"))?;
    }
    u.finish()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn preserves_kinds_and_metadata() {
    let (_d, root) = scratch();
    let l = layer(&[
        E::Dir("./", 0o755),
        E::Dir("ro/", 0o555),
        E::File("ro/file", b"hello", 0o4755),
        E::File("/abs/file", b"abs", 0o600),
        E::Symlink("ro/link", "/etc/passwd"),
        E::Hardlink("ro/hard", "ro/file"),
        E::Fifo("fifo"),
        E::Char("null", 1, 3),
    ]);
    unpack(&root, &[l]).unwrap();
    let m = fs::metadata(root.join("ro/file")).unwrap();
    assert_eq!(fs::read(root.join("ro/file")).unwrap(), b"hello");
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!(m.mtime(), 1_000_000);
    assert_eq!(fs::read(root.join("abs/file")).unwrap(), b"abs");
    assert_eq!(
        fs::read_link(root.join("ro/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(fs::metadata(root.join("ro/hard")).unwrap().ino(), m.ino());
    assert!(fs::symlink_metadata(root.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let ro = fs::metadata(root.join("ro")).unwrap();
    assert_eq!(ro.mode() & 0o7777, 0o555);
    assert_eq!(ro.mtime(), 1_000_000);
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o755);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1000, 2000));
        let null = fs::symlink_metadata(root.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    } else {
        podvm_testsupport::skip(
            "unpack ownership and device node checks",
            "not running as root",
        );
    }
}

#[test]
fn refuses_escapes() {
    let cases: Vec<(Vec<E<'_>>, &str)> = vec![
        (vec![E::File("../escape", b"x", 0o644)], ".."),
        (vec![E::File("a/../../escape", b"x", 0o644)], ".."),
        (
            vec![E::Symlink("link", "/"), E::File("link/escape", b"x", 0o644)],
            "symlink",
        ),
        (
            vec![E::Symlink("up", "../.."), E::Dir("up/escape", 0o755)],
            "symlink",
        ),
        (vec![E::Hardlink("h", "../../etc/passwd")], ".."),
        (vec![E::Hardlink("h", "/etc/passwd")], "does not exist"),
        (
            vec![E::Symlink("l", "/"), E::Hardlink("h", "l/etc/passwd")],
            "symlink",
        ),
        (vec![E::Dir("d", 0o755), E::Hardlink("h", "d")], "directory"),
        (
            vec![E::Symlink("l", ".."), E::File("l/.wh.root", b"", 0o644)],
            "symlink",
        ),
    ];
    for (entries, want) in cases {
        let (dir, root) = scratch();
        let err = unpack(&root, &[layer(&entries)]).unwrap_err();
        assert!(matches!(err, Error::UnsafeEntry { .. }), "{err}");
        assert!(
            err.to_string().contains(want),
            "{err} should mention {want}"
        );
        let outside: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(outside, vec![std::ffi::OsString::from("root")], "{err}");
    }
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let (_d, root) = scratch();
    let lower = layer(&[
        E::File("a/x", b"x", 0o644),
        E::File("a/sub/z", b"z", 0o644),
        E::File("b/keep", b"k", 0o644),
        E::File("b/gone", b"g", 0o644),
        E::Dir("c/", 0o755),
        E::File("c/deep/file", b"f", 0o644),
        E::File("d/file", b"d", 0o644),
    ]);
    let upper = layer(&[
        E::File("a/before", b"1", 0o644),
        E::File("a/sub/new", b"n", 0o644),
        E::File("a/.wh..wh..opq", b"", 0o644),
        E::File("a/after", b"2", 0o644),
        E::File("b/.wh.gone", b"", 0o644),
        E::File(".wh.c", b"", 0o644),
        E::File("d/.wh..wh..opq", b"", 0o644),
        E::File("nodir/.wh.nothing", b"", 0o644),
    ]);
    unpack(&root, &[lower, upper]).unwrap();
    let names = |p: &str| {
        let mut v: Vec<String> = fs::read_dir(root.join(p))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("a"), ["after", "before", "sub"]);
    assert_eq!(names("a/sub"), ["new"]);
    assert_eq!(names("b"), ["keep"]);
    assert!(!root.join("c").exists());
    assert!(names("d").is_empty());
    assert!(!root.join("nodir").exists());
}

#[test]
fn replaces_across_layers() {
    let (_d, root) = scratch();
    let lower = layer(&[
        E::File("f2d/x", b"x", 0o644),
        E::File("d2f", b"file", 0o644),
        E::Symlink("s", "/nowhere"),
    ]);
    let upper = layer(&[
        E::File("f2d", b"now a file", 0o644),
        E::Dir("d2f/", 0o700),
        E::File("s", b"plain", 0o644),
    ]);
    unpack(&root, &[lower, upper]).unwrap();
    assert_eq!(fs::read(root.join("f2d")).unwrap(), b"now a file");
    assert!(root.join("d2f").is_dir());
    assert_eq!(fs::read(root.join("s")).unwrap(), b"plain");
}

#[test]
fn truncated_layer_is_an_error() {
    let (_d, root) = scratch();
    let mut l = layer(&[E::File("big", &[7u8; 4096], 0o644)]);
    l.truncate(512 + 1000);
    let err = unpack(&root, &[l]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}
