//! The real test images from `tests/images/build-busybox.sh` (busybox via
//! umoci and skopeo): load all three archives, check names, configs,
//! rootfs contents, and the EROFS disk image (loop-mounted when possible).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use podvm_image::ImageStore;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs the build script into `out`; `None` (with a loud SKIP) when its
/// tools are missing.
fn build_images(out: &Path) -> Option<PathBuf> {
    let missing: Vec<&str> = ["umoci", "skopeo"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() || !Path::new("/bin/busybox").exists() {
        podvm_testsupport::skip(
            "busybox image tests",
            &format!("they need umoci, skopeo and /bin/busybox (missing: {missing:?}); apt-get install umoci skopeo busybox-static"),
        );
        return None;
    }
    if !nix::unistd::geteuid().is_root() {
        podvm_testsupport::skip(
            "busybox image tests",
            "they need root (the images have files owned by uid 1000)",
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/images/build-busybox.sh");
    let status = Command::new("bash").arg(&script).arg(out).status().unwrap();
    assert!(status.success(), "{} failed", script.display());
    Some(out.to_path_buf())
}

#[test]
fn busybox_images_load_unpack_and_build_disks() {
    let dir = tempfile::tempdir().unwrap();
    let Some(images) = build_images(&dir.path().join("images")) else {
        return;
    };
    let store = ImageStore::open(&dir.path().join("store")).unwrap();

    let oci = store.load(&images.join("busybox-oci.tar")).unwrap();
    assert_eq!(oci.len(), 1);
    assert_eq!(oci[0].names, ["docker.io/library/busybox:latest"]);
    assert_eq!(oci[0].config.cmd, ["sh"]);
    assert_eq!(oci[0].config.env, [PATH_ENV]);
    assert!(oci[0].config.entrypoint.is_empty());

    let docker = store.load(&images.join("busybox-docker.tar")).unwrap();
    assert_eq!(
        docker[0].id, oci[0].id,
        "docker-archive and oci-archive must give one image id"
    );
    assert_eq!(docker[0].names, ["docker.io/library/busybox:latest"]);
    let fresh = ImageStore::open(&dir.path().join("store2")).unwrap();
    let only_docker = fresh
        .load(&images.join("busybox-docker.tar"))
        .unwrap()
        .remove(0);
    assert_eq!(only_docker.id, oci[0].id);

    let entry = store.load(&images.join("entry-oci.tar")).unwrap().remove(0);
    assert_eq!(entry.names, ["docker.io/podvm/entry:latest"]);
    assert_eq!(entry.config.entrypoint, ["/bin/echo", "from-entrypoint"]);
    assert_eq!(entry.config.cmd, ["from-cmd"]);
    assert_eq!(entry.config.user.as_deref(), Some("app"));
    assert_eq!(entry.config.working_dir.as_deref(), Some("/home/app"));
    assert_eq!(entry.config.env, [PATH_ENV, "GREETING=hello"]);
    assert_eq!(entry.layers.len(), 2);
    assert_eq!(store.list().unwrap().len(), 2);

    let busybox = store.resolve("busybox").unwrap();
    let root = store.rootfs_dir(&busybox).unwrap();
    check_busybox_tree(&root);
    assert!(root.join("etc/motd").is_file());
    let only_docker_root = fresh.rootfs_dir(&only_docker).unwrap();
    check_busybox_tree(&only_docker_root);

    let entry = store.resolve("podvm/entry").unwrap();
    let eroot = store.rootfs_dir(&entry).unwrap();
    check_busybox_tree(&eroot);
    assert_eq!(
        fs::read_to_string(eroot.join("home/app/hello.txt")).unwrap(),
        "hello from layer 2\n"
    );
    assert_eq!(
        fs::metadata(eroot.join("home/app/hello.txt"))
            .unwrap()
            .uid(),
        1000
    );
    assert!(
        !eroot.join("etc/motd").exists(),
        "whiteout of etc/motd not applied"
    );

    let disk = store.disk_image(&entry).unwrap();
    assert!(fs::metadata(&disk).unwrap().len() > 1_000_000);
    assert_eq!(store.disk_image(&entry).unwrap(), disk);
    check_mount(&disk, dir.path());
}

fn check_busybox_tree(root: &Path) {
    let busybox = fs::metadata(root.join("bin/busybox")).unwrap();
    assert!(busybox.is_file() && busybox.mode() & 0o111 != 0);
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("app:x:1000:1000::/home/app:/bin/sh"),
        "{passwd}"
    );
    assert!(fs::read_to_string(root.join("etc/group"))
        .unwrap()
        .contains("extra:x:2000:app"));
    let home = fs::metadata(root.join("home/app")).unwrap();
    assert_eq!((home.uid(), home.gid()), (1000, 1000));
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert!(root.join("root").is_dir());
}

/// Loop-mounts the EROFS image read-only and checks the files (root only;
/// skips loudly when loop mounting is impossible here).
fn check_mount(disk: &Path, scratch: &Path) {
    let mnt = scratch.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = Command::new("mount")
        .args(["-o", "loop,ro", "-t", "erofs"])
        .arg(disk)
        .arg(&mnt)
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            podvm_testsupport::skip(
                "EROFS loop mount",
                &format!(
                    "cannot loop-mount the EROFS image ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            podvm_testsupport::skip("EROFS loop mount", &format!("cannot run mount: {e}"));
            return;
        }
    }
    let result = std::panic::catch_unwind(|| {
        check_busybox_tree(&mnt);
        assert_eq!(
            fs::read_to_string(mnt.join("home/app/hello.txt")).unwrap(),
            "hello from layer 2\n"
        );
        assert!(!mnt.join("etc/motd").exists());
    });
    let umount = Command::new("umount").arg(&mnt).status();
    assert!(
        umount.map(|s| s.success()).unwrap_or(false),
        "umount failed"
    );
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
