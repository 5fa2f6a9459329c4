//! The container's mounts, made by its PID 1 in its own mount namespace:
//! the overlay root, then the spec's mounts in order (destinations
//! resolved inside the root), the default devices in a tmpfs `/dev`, then
//! `pivot_root` into it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, chroot, pivot_root};
use oci_spec::runtime::{Mount, Spec};

use super::mount_options::{self, propagation, MountOptions};
use super::{devices, paths};
use crate::cgroup::{CgroupDir, CgroupVersion};
use crate::container::config::Overlay;

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

/// Makes `path` a directory to mount on.
fn ensure_dir(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("{} in the container is not a directory", path.display()),
        Err(_) => fs::create_dir_all(path).with_context(|| format!("creating {}", path.display())),
    }
}

/// Makes `path` a regular file to bind a file on.
fn ensure_file(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_dir() => Ok(()),
        Ok(_) => bail!("{} in the container is a directory", path.display()),
        Err(_) => {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            Ok(())
        }
    }
}

fn overlay_option(path: &Path) -> anyhow::Result<&str> {
    let text = path.to_str().context("overlay layer path is not UTF-8")?;
    if text.contains([',', ':', '\\']) {
        bail!("overlay layer path {text:?} contains ',', ':' or '\\'");
    }
    Ok(text)
}

/// What the spec's mounts need besides themselves.
pub struct MountContext<'a> {
    /// The container's root (the bundle's `rootfs`).
    pub root: &'a Path,
    pub cgroup: Option<&'a CgroupDir>,
    /// The container has a cgroup namespace of its own.
    pub cgroupns: bool,
}

/// Builds the container's root at `ctx.root`: the root's propagation, the
/// overlay (or the root bound on itself, so it is a mount point), the
/// spec's mounts.
pub fn prepare_root(
    spec: &Spec,
    overlay: Option<&Overlay>,
    ctx: &MountContext<'_>,
) -> anyhow::Result<()> {
    let root_propagation = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(propagation)
        .unwrap_or(MsFlags::MS_REC | MsFlags::MS_PRIVATE);
    mnt(None, Path::new("/"), None, root_propagation, None)?;
    match overlay {
        Some(layers) => {
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                overlay_option(&layers.lower)?,
                overlay_option(&layers.upper)?,
                overlay_option(&layers.work)?
            );
            mnt(
                Some(Path::new("overlay")),
                ctx.root,
                Some("overlay"),
                MsFlags::empty(),
                Some(&data),
            )?;
        }
        None => mnt(
            Some(ctx.root),
            ctx.root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?,
    }
    for m in spec.mounts().iter().flatten() {
        mount_one(m, ctx).with_context(|| format!("mount {}", m.destination().display()))?;
    }
    Ok(())
}

fn mount_one(m: &Mount, ctx: &MountContext<'_>) -> anyhow::Result<()> {
    let dest = paths::secure_join(ctx.root, m.destination())
        .with_context(|| format!("resolving {}", m.destination().display()))?;
    let opts = mount_options::parse(m.options().as_deref().unwrap_or_default());
    let fstype = m.typ().as_deref().unwrap_or_default();
    if fstype == "cgroup" || fstype == "cgroup2" {
        return mount_cgroup(&dest, &opts, ctx);
    }
    if opts.is_bind() || fstype == "bind" {
        let source = m
            .source()
            .as_deref()
            .context("a bind mount needs a source")?;
        bind(source, &dest, &opts)?;
    } else {
        ensure_dir(&dest)?;
        let source = m.source().clone().unwrap_or_else(|| PathBuf::from(fstype));
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        match mount(Some(&source), &dest, Some(fstype), opts.flags, data) {
            Ok(()) => {}
            // A sysfs needs the network namespace's owner; bind the
            // agent's instead, as runc does where it cannot mount one.
            Err(_) if fstype == "sysfs" => bind(Path::new("/sys"), &dest, &opts)?,
            // POSIX message queues are optional in the guest kernel.
            Err(Errno::ENODEV) if fstype == "mqueue" => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "mounting {} ({fstype}) on {}",
                        source.display(),
                        dest.display()
                    )
                })
            }
        }
        if fstype == "tmpfs" && m.destination() == Path::new("/dev") {
            devices::populate(&dest)?;
        }
    }
    for flags in &opts.propagation {
        mnt(None, &dest, None, *flags, None)?;
    }
    Ok(())
}

/// Binds `source` (a path of the agent's) at `dest`, then applies the
/// flags a bind ignores with a remount.
fn bind(source: &Path, dest: &Path, opts: &MountOptions) -> anyhow::Result<()> {
    let meta = fs::metadata(source).with_context(|| format!("bind source {}", source.display()))?;
    if meta.is_dir() {
        ensure_dir(dest)?;
    } else {
        ensure_file(dest)?;
    }
    let recursive = opts.flags & MsFlags::MS_REC;
    mnt(Some(source), dest, None, MsFlags::MS_BIND | recursive, None)?;
    let remount = opts.remount_flags();
    if !remount.is_empty() {
        mnt(
            None,
            dest,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | remount,
            None,
        )?;
    }
    Ok(())
}

/// The container's own cgroup at `dest`: a fresh cgroup2 mount in a cgroup
/// namespace, its v2 directory bound otherwise, or (v1) a tmpfs with each
/// hierarchy's directory bound in it. Without a cgroup nothing is mounted.
fn mount_cgroup(dest: &Path, opts: &MountOptions, ctx: &MountContext<'_>) -> anyhow::Result<()> {
    let Some(cgroup) = ctx.cgroup else {
        return Ok(());
    };
    ensure_dir(dest)?;
    let flags = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    match cgroup.version {
        CgroupVersion::V2 if ctx.cgroupns => mnt(
            Some(Path::new("cgroup2")),
            dest,
            Some("cgroup2"),
            flags,
            None,
        ),
        CgroupVersion::V2 => {
            let dir = cgroup.main_dir().context("the cgroup has no directory")?;
            bind(dir, dest, opts)
        }
        CgroupVersion::V1 => {
            let writable = flags - MsFlags::MS_RDONLY;
            mnt(
                Some(Path::new("tmpfs")),
                dest,
                Some("tmpfs"),
                writable,
                Some("mode=755"),
            )?;
            let bind_opts = MountOptions {
                flags: flags | MsFlags::MS_BIND,
                ..MountOptions::default()
            };
            for dir in &cgroup.dirs {
                let sub = dest.join(dir.controllers.join(","));
                bind(&dir.path, &sub, &bind_opts)?;
            }
            if flags.contains(MsFlags::MS_RDONLY) {
                mnt(
                    None,
                    dest,
                    None,
                    MsFlags::MS_REMOUNT | flags,
                    Some("mode=755"),
                )?;
            }
            Ok(())
        }
    }
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
