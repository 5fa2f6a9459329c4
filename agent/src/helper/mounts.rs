//! The container's mounts, made by its PID 1 in its own mount namespace:
//! the overlay root, `/proc`, a small `/dev`, read-only `/sys`, the pod's
//! `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and `/dev/shm`, then
//! `pivot_root` into it.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, pivot_root};

use crate::container::config::LaunchConfig;

/// Device nodes bind-mounted from the agent's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn mnt(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> anyhow::Result<()> {
    mount(src, target, fstype, flags, data).with_context(|| {
        format!(
            "mounting {} ({}) on {}",
            src.map_or_else(|| "none".into(), |p| p.display().to_string()),
            fstype.unwrap_or("bind"),
            target.display()
        )
    })
}

/// Makes `root/rel` a directory, refusing a symlink (it would resolve
/// outside the container here).
fn ensure_dir(root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => bail!("/{rel} in the image is not a directory"),
        Err(_) => fs::create_dir_all(&path).with_context(|| format!("creating /{rel}"))?,
    }
    Ok(path)
}

/// Makes `root/rel` a regular file to mount over; a symlink is replaced.
fn ensure_file(root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let path = root.join(rel);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => return Ok(path),
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::remove_file(&path).with_context(|| format!("replacing the symlink /{rel}"))?;
        }
        Ok(_) => bail!("/{rel} in the image is not a regular file"),
        Err(_) => {}
    }
    fs::File::create(&path).with_context(|| format!("creating /{rel}"))?;
    Ok(path)
}

fn overlay_option(path: &Path) -> anyhow::Result<String> {
    let text = path.to_str().context("overlay layer path is not UTF-8")?;
    if text.contains([',', ':', '\\']) {
        bail!("overlay layer path {text:?} contains ',', ':' or '\\'");
    }
    Ok(text.to_string())
}

/// Builds the container's root at `cfg.merged`.
pub fn prepare_root(cfg: &LaunchConfig) -> anyhow::Result<()> {
    mnt(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        overlay_option(&cfg.lower)?,
        overlay_option(&cfg.upper)?,
        overlay_option(&cfg.work)?
    );
    let root = cfg.merged.as_path();
    mnt(
        Some(Path::new("overlay")),
        root,
        Some("overlay"),
        MsFlags::empty(),
        Some(&data),
    )?;

    let nosuid_noexec_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc_dir = ensure_dir(root, "proc")?;
    mnt(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        nosuid_noexec_nodev,
        None,
    )?;

    mount_dev(root, cfg)?;

    let sys = ensure_dir(root, "sys")?;
    let ro = nosuid_noexec_nodev | MsFlags::MS_RDONLY;
    if mount(Some("sysfs"), &sys, Some("sysfs"), ro, None::<&str>).is_err() {
        mnt(
            Some(Path::new("/sys")),
            &sys,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        mnt(
            None,
            &sys,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro,
            None,
        )?;
    }

    ensure_dir(root, "etc")?;
    for (src, rel) in [
        (&cfg.hosts, "etc/hosts"),
        (&cfg.hostname, "etc/hostname"),
        (&cfg.resolv_conf, "etc/resolv.conf"),
    ] {
        let target = ensure_file(root, rel)?;
        mnt(Some(src), &target, None, MsFlags::MS_BIND, None)?;
    }
    Ok(())
}

fn mount_dev(root: &Path, cfg: &LaunchConfig) -> anyhow::Result<()> {
    let dev = ensure_dir(root, "dev")?;
    mnt(
        Some(Path::new("tmpfs")),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for name in DEVICES {
        let target = dev.join(name);
        fs::File::create(&target).with_context(|| format!("creating /dev/{name}"))?;
        let src = Path::new("/dev").join(name);
        mnt(Some(&src), &target, None, MsFlags::MS_BIND, None)?;
    }
    let pts = ensure_dir(root, "dev/pts")?;
    mnt(
        Some(Path::new("devpts")),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    symlink("pts/ptmx", dev.join("ptmx")).context("linking /dev/ptmx")?;
    let shm = ensure_dir(root, "dev/shm")?;
    mnt(Some(&cfg.shm), &shm, None, MsFlags::MS_BIND, None)?;
    let mqueue = ensure_dir(root, "dev/mqueue")?;
    // POSIX message queues are optional in the guest kernel: skip when absent.
    let _ = mount(
        Some("mqueue"),
        &mqueue,
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        None::<&str>,
    );
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).with_context(|| format!("linking /dev/{link}"))?;
    }
    Ok(())
}

/// Makes `root` the process's root. `pivot_root` is refused when the current
/// root is the initial ramfs (the guest before any switch_root); then the
/// root is moved over `/` and entered with `chroot`, as runc's no-pivot mode.
pub fn enter_root(root: &Path) -> anyhow::Result<()> {
    chdir(root).context("entering the new root")?;
    match pivot_root(".", ".") {
        Ok(()) => {
            umount2(".", MntFlags::MNT_DETACH).context("detaching the old root")?;
        }
        Err(Errno::EINVAL) => {
            mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
                .context("moving the new root over /")?;
            chroot(".").context("chroot into the new root")?;
        }
        Err(e) => return Err(e).context("pivot_root"),
    }
    chdir("/").context("chdir /")?;
    Ok(())
}
