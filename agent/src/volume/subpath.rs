//! `subPath`: a path inside a volume bound into a container instead of the
//! whole volume, made safe the way kubelet's `subpath_linux.go` does.
//!
//! The path must be relative and have no `..` component. Missing
//! directories are created one by one below the volume, with the volume
//! root's permission bits (the umask applies, as in kubelet). Every lookup
//! is `openat2(RESOLVE_BENEATH)` from the volume's root, so a symlink in
//! the volume may point elsewhere in the volume but never out of it; the
//! result is an `O_PATH` descriptor, and what gets bound is that
//! descriptor (`/proc/self/fd/N`), never the path again: a container that
//! swaps a directory for a symlink after the check changes nothing. The
//! bind lands at a stable place (kubelet's `volume-subpaths`), from which
//! the container's mount is made.

use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

/// Why a `subPath` is refused (kubelet's checks before it touches the
/// volume).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSubPath {
    #[error("error SubPath `{0}` must not be an absolute path")]
    Absolute(String),
    #[error("unable to provision SubPath `{0}`: must not contain '..'")]
    Backsteps(String),
}

/// Why a valid `subPath` could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SubPathError {
    #[error("opening the volume at {path}: {source}")]
    Volume {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{sub_path:?} leads out of the volume")]
    Escapes { sub_path: String },
    #[error("creating the directory {sub_path:?}: {source}")]
    Create {
        sub_path: String,
        #[source]
        source: Errno,
    },
    #[error("opening {sub_path:?}: {source}")]
    Open {
        sub_path: String,
        #[source]
        source: Errno,
    },
    #[error("preparing the bind target {path}: {source}")]
    Target {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding the subPath at {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

/// The components of `sub_path` below the volume's root (none: the root
/// itself), after kubelet's checks.
pub fn components(sub_path: &str) -> Result<Vec<&str>, InvalidSubPath> {
    if sub_path.starts_with('/') {
        return Err(InvalidSubPath::Absolute(sub_path.into()));
    }
    let parts: Vec<&str> = sub_path.split('/').collect();
    if parts.contains(&"..") {
        return Err(InvalidSubPath::Backsteps(sub_path.into()));
    }
    Ok(parts
        .into_iter()
        .filter(|p| !p.is_empty() && *p != ".")
        .collect())
}

/// Looks `rel` up below `root` without leaving it or crossing a mount.
fn open_beneath(root: &OwnedFd, rel: &str) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    // EAGAIN: a rename raced the lookup; the kernel asks for a retry.
    let mut result = openat2(root, rel, how);
    for _ in 0..16 {
        if !matches!(result, Err(Errno::EAGAIN)) {
            break;
        }
        result = openat2(root, rel, how);
    }
    result
}

fn lookup_error(sub_path: &[&str], source: Errno) -> SubPathError {
    let sub_path = sub_path.join("/");
    match source {
        Errno::EXDEV => SubPathError::Escapes { sub_path },
        source => SubPathError::Open { sub_path, source },
    }
}

/// Opens `parts` (from [`components`]) below the volume at `volume`,
/// creating missing directories; returns an `O_PATH` descriptor of what it
/// names (a directory or a file).
pub fn resolve(volume: &Path, parts: &[&str]) -> Result<OwnedFd, SubPathError> {
    let root = open(
        volume,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| SubPathError::Volume {
        path: volume.to_path_buf(),
        source,
    })?;
    let volume_err = |source| SubPathError::Volume {
        path: volume.to_path_buf(),
        source,
    };
    let perm = Mode::from_bits_truncate(fstat(&root).map_err(volume_err)?.st_mode & 0o777);
    let mut current = open_beneath(&root, ".").map_err(volume_err)?;
    for i in 0..parts.len() {
        let prefix = &parts[..=i];
        let rel = prefix.join("/");
        current = match open_beneath(&root, &rel) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                let create_err = |source| SubPathError::Create {
                    sub_path: rel.clone(),
                    source,
                };
                match mkdirat(&current, parts[i], perm) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(create_err(e)),
                }
                // Still missing: a dangling symlink stood in the way.
                open_beneath(&root, &rel).map_err(|e| match e {
                    Errno::ENOENT => create_err(e),
                    e => lookup_error(prefix, e),
                })?
            }
            Err(e) => return Err(lookup_error(prefix, e)),
        };
    }
    Ok(current)
}

/// Detaches whatever is mounted at `target` (a bind of an earlier run).
fn detach(target: &Path) {
    for _ in 0..16 {
        if umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).is_err() {
            return;
        }
    }
}

/// Binds the subPath `fd` (from [`resolve`]) at `target`, replacing an
/// earlier bind there.
pub fn bind_at(fd: &OwnedFd, target: &Path) -> Result<(), SubPathError> {
    let target_err = |source| SubPathError::Target {
        path: target.to_path_buf(),
        source,
    };
    let is_dir = fstat(fd)
        .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
        .map_err(|e| target_err(e.into()))?;
    detach(target);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(target_err)?;
    }
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() == is_dir => {}
        Ok(meta) if meta.is_dir() => fs::remove_dir(target).map_err(target_err)?,
        Ok(_) => fs::remove_file(target).map_err(target_err)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(target_err(e)),
    }
    if !target.exists() {
        if is_dir {
            fs::create_dir(target).map_err(target_err)?;
        } else {
            fs::File::create(target).map_err(target_err)?;
        }
    }
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    mount(
        Some(&source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| SubPathError::Bind {
        path: target.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    fn same_file(fd: &OwnedFd, path: &Path) -> bool {
        let st = fstat(fd).unwrap();
        let meta = fs::metadata(path).unwrap();
        st.st_ino == meta.ino() && st.st_dev == meta.dev()
    }

    fn volume() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let vol = tmp.path().join("vol");
        fs::create_dir(&vol).unwrap();
        fs::set_permissions(&vol, fs::Permissions::from_mode(0o777)).unwrap();
        (tmp, vol)
    }

    #[test]
    fn kubelet_checks_on_the_text() {
        assert_eq!(components("a/b").unwrap(), ["a", "b"]);
        assert_eq!(components("./a//b/").unwrap(), ["a", "b"]);
        assert!(components(".").unwrap().is_empty());
        assert_eq!(
            components("/etc").unwrap_err().to_string(),
            "error SubPath `/etc` must not be an absolute path"
        );
        for bad in ["..", "a/../b", "a/..", "../x"] {
            assert_eq!(
                components(bad).unwrap_err(),
                InvalidSubPath::Backsteps(bad.into())
            );
        }
        assert_eq!(
            components("a/../b").unwrap_err().to_string(),
            "unable to provision SubPath `a/../b`: must not contain '..'"
        );
        // `..` inside a name is a name.
        assert_eq!(components("a..b/..c").unwrap(), ["a..b", "..c"]);
    }

    #[test]
    fn missing_directories_are_created_with_the_volume_mode() {
        let (_tmp, vol) = volume();
        let fd = resolve(&vol, &["a", "b", "c"]).unwrap();
        let made = vol.join("a/b/c");
        assert!(made.is_dir());
        assert!(same_file(&fd, &made));
        // kubelet respects the umask: at most the volume's 0777.
        let umask = {
            let old = nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
            nix::sys::stat::umask(old);
            old.bits()
        };
        let mode = fs::metadata(vol.join("a")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o777 & !umask);
        // Existing paths, files included, are opened as they are.
        fs::write(vol.join("a/file"), "x").unwrap();
        assert!(same_file(
            &resolve(&vol, &["a", "file"]).unwrap(),
            &vol.join("a/file")
        ));
        assert!(same_file(&resolve(&vol, &[]).unwrap(), &vol));
    }

    #[test]
    fn symlinks_may_not_leave_the_volume() {
        let (tmp, vol) = volume();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        symlink(&outside, vol.join("abs")).unwrap();
        symlink("../outside", vol.join("rel")).unwrap();
        fs::create_dir(vol.join("d")).unwrap();
        symlink("../../outside", vol.join("d/deep")).unwrap();
        for parts in [&["abs"][..], &["rel"], &["rel", "new"], &["d", "deep"]] {
            let err = resolve(&vol, parts).unwrap_err();
            assert!(
                matches!(err, SubPathError::Escapes { .. }),
                "{parts:?}: {err}"
            );
        }
        assert!(!outside.join("new").exists(), "created a directory outside");
        // A symlink that stays inside is followed, as kubelet does.
        fs::create_dir(vol.join("real")).unwrap();
        symlink("../real", vol.join("d/inside")).unwrap();
        let fd = resolve(&vol, &["d", "inside", "sub"]).unwrap();
        assert!(same_file(&fd, &vol.join("real/sub")));
    }

    #[test]
    fn dangling_links_and_files_are_refused() {
        let (_tmp, vol) = volume();
        symlink("nowhere", vol.join("dangling")).unwrap();
        assert!(matches!(
            resolve(&vol, &["dangling"]),
            Err(SubPathError::Create { .. })
        ));
        fs::write(vol.join("file"), "x").unwrap();
        assert!(matches!(
            resolve(&vol, &["file", "sub"]),
            Err(SubPathError::Open {
                source: Errno::ENOTDIR,
                ..
            })
        ));
    }
}
