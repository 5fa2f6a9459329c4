//! Reading `/proc/self/mountinfo` and unmounting whole subtrees.

use std::path::{Path, PathBuf};

use nix::mount::{umount2, MntFlags};

use crate::console::say;

/// Decodes the octal escapes (`\040` for a space, ...) of a mountinfo path.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(out))
}

/// Mount points listed in `text` (mountinfo format), in order.
pub fn parse_mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .collect()
}

/// Mount points at or below `root` in this mount namespace.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(root))
        .collect()
}

/// Unmounts everything at or below `root`, deepest (latest) first; a busy
/// mount is detached lazily.
pub fn unmount_tree(root: &Path) {
    for _ in 0..4 {
        let mut points = mounts_under(root);
        if points.is_empty() {
            return;
        }
        points.reverse();
        for point in points {
            if let Err(e) = umount2(&point, MntFlags::empty()) {
                if let Err(e2) = umount2(&point, MntFlags::MNT_DETACH) {
                    say!(
                        "unmounting {} failed: {e}; detaching failed: {e2}",
                        point.display()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:5 / /tmp/a\\040b rw - tmpfs tmpfs rw\n\
                    bad\n";
        assert_eq!(
            parse_mount_points(text),
            vec![PathBuf::from("/"), PathBuf::from("/tmp/a b")]
        );
    }
}
