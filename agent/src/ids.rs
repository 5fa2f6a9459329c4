//! Random container ids and RFC 3339 timestamps.

use std::fs::File;
use std::io::{self, Read};

/// A random 64-hex-digit id, like the container ids containerd makes.
pub fn random_id() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The current time, RFC 3339 in UTC with second precision (Kubernetes
/// status timestamps).
pub fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// The current time, RFC 3339 in UTC with nanoseconds (CRI log lines).
pub fn now_rfc3339_nano() -> String {
    format!("{:.9}", jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let s = now_rfc3339();
        assert!(s.ends_with('Z') && !s.contains('.'), "{s}");
        let n = now_rfc3339_nano();
        let frac = n.split('.').nth(1).unwrap();
        assert_eq!(frac.len(), 10, "{n}");
        assert!(n.ends_with('Z'));
        assert!(n.parse::<jiff::Timestamp>().is_ok());
    }
}
