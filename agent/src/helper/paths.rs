//! Paths inside the container's root: resolving a mount destination with
//! its symlinks taken as if the root were `/` (so an image cannot point a
//! mount outside itself), and the spec's masked and read-only paths.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

/// Most symlinks followed while resolving one path (the kernel's 40 is per
/// lookup; this bounds a loop).
const MAX_SYMLINKS: usize = 255;

fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

/// `root` joined with `path`, where every symlink met on the way is
/// resolved inside `root` (an absolute target starts again at `root`, `..`
/// stops at it). What does not exist yet is taken as it is.
pub fn secure_join(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut resolved = PathBuf::new();
    let mut pending: VecDeque<OsString> = components(path).collect();
    let mut followed = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&name);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                followed += 1;
                if followed > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut next: VecDeque<OsString> = components(&target).collect();
                next.extend(pending);
                pending = next;
            }
            _ => resolved.push(&name),
        }
    }
    Ok(root.join(resolved))
}

/// Hides `path`: `/dev/null` over a file, an empty read-only tmpfs over a
/// directory; a path that does not exist is left alone.
pub fn mask(path: &Path) -> anyhow::Result<()> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("masking {}", path.display())),
    };
    let result = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    result.with_context(|| format!("masking {}", path.display()))
}

/// Makes `path` read-only (a bind mount on itself, remounted read-only
/// with the flags it had); a path that does not exist is left alone.
pub fn make_readonly(path: &Path) -> anyhow::Result<()> {
    match mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("binding {} read-only", path.display())),
    }
    remount_readonly(path)
}

/// Remounts the bind mount at `path` read-only, keeping its nosuid, nodev
/// and noexec.
pub fn remount_readonly(path: &Path) -> anyhow::Result<()> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Ok(st) = statvfs(path) {
        for (fs_flag, ms_flag) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if st.flags().contains(fs_flag) {
                flags |= ms_flag;
            }
        }
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .with_context(|| format!("remounting {} read-only", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("run/real")).unwrap();
        symlink("/run/real", root.join("abs")).unwrap();
        symlink("../../../../run/real", root.join("etc/rel")).unwrap();
        symlink("/", root.join("escape")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        let join = |p: &str| secure_join(root, Path::new(p)).unwrap();
        assert_eq!(join("/etc/hosts"), root.join("etc/hosts"));
        assert_eq!(join("/abs/file"), root.join("run/real/file"));
        assert_eq!(join("/etc/rel/x"), root.join("run/real/x"));
        assert_eq!(join("/../../etc"), root.join("etc"));
        assert_eq!(join("/escape/etc/passwd"), root.join("etc/passwd"));
        assert_eq!(join("/new/dir"), root.join("new/dir"));
        let e = secure_join(root, Path::new("/loop1/x")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }
}
