//! Container ids of the container-level API: containerd's identifier rules
//! (`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`, at most 76 characters), so
//! an id is a safe path component and never a pod container's name (those
//! have no `_`) once prefixed with `cri_`.

/// Longest id (containerd's `identifiers.maxLength`).
pub const MAX_ID_LEN: usize = 76;

/// Whether `id` follows containerd's identifier rules.
pub fn is_valid(id: &str) -> bool {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return false;
    }
    let mut previous_separator = true;
    for b in id.bytes() {
        let separator = matches!(b, b'.' | b'_' | b'-');
        if separator && previous_separator {
            return false;
        }
        if !separator && !b.is_ascii_alphanumeric() {
            return false;
        }
        previous_separator = separator;
    }
    !previous_separator
}

/// The name of the container's cgroup and of its directory in the run
/// directory.
pub fn dir_name(id: &str) -> String {
    format!("cri_{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_identifiers() {
        for good in ["a", "abc123", "a.b_c-d", &"f".repeat(64), &"x".repeat(76)] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "a_-b",
            "../x",
            "a/b",
            "a b",
            "é",
            &"x".repeat(77),
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert_eq!(dir_name("abc"), "cri_abc");
    }
}
