//! Image reference (name) normalization, following the docker reference
//! grammar: `busybox` is `docker.io/library/busybox:latest`.

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Registry used when a reference names none.
const DEFAULT_DOMAIN: &str = "docker.io";
/// Repository namespace of single-component names on the default registry.
const OFFICIAL_NAMESPACE: &str = "library";
/// Longest repository name accepted (domain and path).
const MAX_NAME_LEN: usize = 255;
/// Longest tag accepted.
const MAX_TAG_LEN: usize = 128;

/// Normalizes an image reference to its fully qualified form.
///
/// `busybox` → `docker.io/library/busybox:latest`, `foo/bar:1` →
/// `docker.io/foo/bar:1`, `localhost:5000/x` → `localhost:5000/x:latest`,
/// `name@sha256:…` keeps its digest (and gets no default tag).
pub fn normalize_reference(reference: &str) -> Result<String> {
    let invalid = |reason: &str| Error::InvalidReference {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    if reference.is_empty() {
        return Err(invalid("empty reference"));
    }
    let (name_tag, digest) = match reference.split_once('@') {
        Some((n, d)) => {
            let digest = Digest::parse(d).map_err(|e| invalid(&e.to_string()))?;
            (n, Some(digest))
        }
        None => (reference, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).map_err(|r| invalid(&r))?;
    }
    let name = normalize_name(name).map_err(|r| invalid(&r))?;
    let mut out = name;
    match (tag, &digest) {
        (Some(tag), _) => {
            out.push(':');
            out.push_str(tag);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(&digest.to_string());
    }
    Ok(out)
}

/// Whether `s` names a repository with a registry domain first.
fn is_domain(s: &str) -> bool {
    s.contains('.')
        || s.contains(':')
        || s == "localhost"
        || s.chars().any(|c| c.is_ascii_uppercase())
}

/// Normalizes the repository part (`[domain/]path`).
fn normalize_name(name: &str) -> std::result::Result<String, String> {
    if name.is_empty() {
        return Err("empty repository name".to_string());
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) => (first, rest),
        _ => (DEFAULT_DOMAIN, name),
    };
    check_domain(domain)?;
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    for component in path.split('/') {
        check_path_component(component)?;
    }
    let full = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("{domain}/{OFFICIAL_NAMESPACE}/{path}")
    } else {
        format!("{domain}/{path}")
    };
    if full.len() > MAX_NAME_LEN {
        return Err(format!(
            "repository name longer than {MAX_NAME_LEN} characters"
        ));
    }
    Ok(full)
}

/// Checks a registry domain: host labels of `[A-Za-z0-9-]`, optional `:port`.
fn check_domain(domain: &str) -> std::result::Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("invalid registry port in {domain:?}"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!("invalid registry host {domain:?}"));
    }
    Ok(())
}

/// Checks one repository path component:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_path_component(c: &str) -> std::result::Result<(), String> {
    if c.is_empty() {
        return Err("empty path component in repository name".to_string());
    }
    if c.chars().any(|ch| ch.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase, got {c:?}"));
    }
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let sep_ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if start == 0 || i == bytes.len() || !sep_ok {
            return Err(format!("invalid repository path component {c:?}"));
        }
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> std::result::Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (i > 0 && (b == b'.' || b == b'-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("invalid tag {tag:?}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let d = format!("sha256:{}", "0".repeat(64));
        let cases = [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".to_string()),
            ("foo/bar:1", "docker.io/foo/bar:1".to_string()),
            ("docker.io/foo/bar", "docker.io/foo/bar:latest".to_string()),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest".to_string(),
            ),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest".to_string(),
            ),
            ("localhost:5000/x", "localhost:5000/x:latest".to_string()),
            ("localhost/x:v1", "localhost/x:v1".to_string()),
            ("quay.io/a/b/c:v-1.2_3", "quay.io/a/b/c:v-1.2_3".to_string()),
            (
                "my_repo__x/a-b--c",
                "docker.io/my_repo__x/a-b--c:latest".to_string(),
            ),
            (
                &format!("busybox@{d}") as &str,
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                &format!("busybox:1@{d}") as &str,
                format!("docker.io/library/busybox:1@{d}"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reference(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "Busybox",
            "foo/Bar",
            "busybox:",
            "busybox:-x",
            "busybox:a b",
            "a//b",
            "/busybox",
            "busybox/",
            "-foo",
            "foo-",
            "foo..bar",
            "foo___bar",
            "localhost:abc/x",
            "bad_host.io:5000/x",
            "busybox@sha256:123",
            "busybox@md5:0123",
            "busybox@",
            &"a".repeat(300),
            &format!("busybox:{}", "t".repeat(129)),
        ] {
            let err = normalize_reference(bad).unwrap_err();
            assert!(
                err.to_string().contains("invalid image reference"),
                "{bad}: {err}"
            );
        }
    }
}
