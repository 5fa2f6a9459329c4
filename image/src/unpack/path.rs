//! Path rules for layer entries: names are made relative, `..` is refused,
//! and parents are walked with `lstat` so nothing is written through a
//! symlink.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

/// Turns an entry name into a path relative to the root: leading `/` and
/// `.` components are dropped, `..` and NUL bytes are refused (the error
/// says why). `Ok(None)` is the root itself.
pub(crate) fn sanitize(raw: &[u8]) -> Result<Option<PathBuf>, String> {
    if raw.contains(&0) {
        return Err("name contains a NUL byte".to_string());
    }
    let mut out = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(raw)).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err("path has a \"..\" component (escapes the root)".to_string())
            }
            Component::Normal(c) => out.push(c),
            Component::Prefix(_) => return Err("path has a prefix component".to_string()),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// What walking the parents of an entry found.
pub(crate) enum Parents {
    /// Every parent is a real directory (created where missing, if asked).
    Ready,
    /// A parent does not exist (and creating was not asked for).
    Missing,
}

/// Walks the parent directories of `rel` under `root` with `lstat`. A
/// parent that is a symlink or not a directory is an error (the message
/// names it); missing parents are created with mode 0755 when `create`.
pub(crate) fn check_parents(root: &Path, rel: &Path, create: bool) -> Result<Parents, String> {
    let Some(parent) = rel.parent() else {
        return Ok(Parents::Ready);
    };
    let mut cur = root.to_path_buf();
    for component in parent.components() {
        cur.push(component);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "parent {} is a symlink (writing through it could escape the root)",
                    cur.strip_prefix(root).unwrap_or(&cur).display()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "parent {} is not a directory",
                    cur.strip_prefix(root).unwrap_or(&cur).display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(Parents::Missing);
                }
                fs::DirBuilder::new()
                    .mode(0o755)
                    .create(&cur)
                    .map_err(|e| format!("creating {}: {e}", cur.display()))?;
            }
            Err(e) => return Err(format!("inspecting {}: {e}", cur.display())),
        }
    }
    Ok(Parents::Ready)
}

/// Removes whatever is at `path` (not following a symlink there); a missing
/// path is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes() {
        let ok = |s: &str| sanitize(s.as_bytes()).unwrap();
        assert_eq!(ok("/etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(ok("./a/./b/"), Some(PathBuf::from("a/b")));
        assert_eq!(ok("./"), None);
        assert_eq!(ok("/"), None);
        assert!(sanitize(b"../escape").is_err());
        assert!(sanitize(b"a/../../b").is_err());
        assert!(sanitize(b"a/..").is_err());
        assert!(sanitize(b"a\0b").is_err());
    }

    #[test]
    fn refuses_symlink_parents() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("link")).unwrap();
        let err = check_parents(dir.path(), Path::new("link/etc/evil"), true)
            .err()
            .unwrap();
        assert!(err.contains("symlink"), "{err}");
        assert!(matches!(
            check_parents(dir.path(), Path::new("new/dir/file"), false),
            Ok(Parents::Missing)
        ));
        assert!(matches!(
            check_parents(dir.path(), Path::new("new/dir/file"), true),
            Ok(Parents::Ready)
        ));
        assert!(dir.path().join("new/dir").is_dir());
    }
}
