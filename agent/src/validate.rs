//! Checks on a `SandboxSpec` from the host before anything is created:
//! names end up in paths, the hostname and aliases in `/etc/hosts`, so they
//! must be what Kubernetes allows (and nothing that escapes a directory or a
//! line).

use std::collections::HashSet;
use std::net::IpAddr;

use podvm_proto::SandboxSpec;

/// Most containers a pod may have here.
pub const MAX_CONTAINERS: usize = 64;

/// A DNS-1123 label (Kubernetes container names), as the API checks it.
pub use podvm_proto::convert::is_dns_label;

/// A host name: dot-separated labels of letters, digits and '-', up to 253
/// characters (64 for the pod's own hostname, the kernel limit).
fn is_host_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
}

/// Returns what is wrong with `spec`, if anything.
pub fn check(spec: &SandboxSpec) -> Result<(), String> {
    if !is_host_name(&spec.hostname, 64) {
        return Err(format!("invalid hostname {:?}", spec.hostname));
    }
    for alias in &spec.host_aliases {
        if alias.ip.parse::<IpAddr>().is_err() {
            return Err(format!("invalid hostAliases IP {:?}", alias.ip));
        }
        if alias.hostnames.is_empty() {
            return Err(format!(
                "hostAliases entry for {} has no hostnames",
                alias.ip
            ));
        }
        if let Some(bad) = alias.hostnames.iter().find(|h| !is_host_name(h, 253)) {
            return Err(format!("invalid hostAliases hostname {bad:?}"));
        }
    }
    // No containers: just the sandbox, for containers created one at a
    // time (CreateContainer).
    if spec.containers.len() > MAX_CONTAINERS {
        return Err(format!("a pod has at most {MAX_CONTAINERS} containers"));
    }
    let mut names = HashSet::new();
    for c in &spec.containers {
        if !is_dns_label(&c.name) {
            return Err(format!("invalid container name {:?}", c.name));
        }
        if !names.insert(c.name.as_str()) {
            return Err(format!("duplicate container name {:?}", c.name));
        }
        if let Some(bad) = c
            .env
            .iter()
            .find(|e| e.name.is_empty() || e.name.contains(['=', '\0']))
        {
            return Err(format!(
                "invalid environment variable name {:?} in {}",
                bad.name, c.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_hostnames() {
        assert!(is_dns_label("web-1"));
        for bad in ["", "-a", "a-", "A", "a_b", "../x", "a/b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_host_name("pod.example-1", 64));
        assert!(!is_host_name("bad\nname", 64));
        assert!(!is_host_name("a..b", 64));
        assert!(!is_host_name(&"a".repeat(65), 64));
    }
}
