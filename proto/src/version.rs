//! The version exchange. Every client calls `Health.Version` first on a
//! connection; the two sides are compatible when their major versions are
//! equal (minor versions only add fields and RPCs, which protobuf and ttrpc
//! let an older peer ignore or refuse by name).

/// Changed only for an incompatible change of the API.
pub const PROTOCOL_MAJOR: u32 = 2;
/// Raised whenever fields or RPCs are added.
pub const PROTOCOL_MINOR: u32 = 3;

/// What a peer's version means for this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// Same major and minor.
    Same,
    /// Same major; the peer is older and lacks what came after its minor.
    PeerOlder { minor: u32 },
    /// Same major; the peer is newer (it knows more than this side).
    PeerNewer { minor: u32 },
    /// Different majors: no conversation is possible.
    Incompatible { major: u32, minor: u32 },
}

impl Compatibility {
    /// Compares a peer's version with this build's.
    pub fn of(major: u32, minor: u32) -> Self {
        match (major == PROTOCOL_MAJOR, minor.cmp(&PROTOCOL_MINOR)) {
            (false, _) => Compatibility::Incompatible { major, minor },
            (true, std::cmp::Ordering::Equal) => Compatibility::Same,
            (true, std::cmp::Ordering::Less) => Compatibility::PeerOlder { minor },
            (true, std::cmp::Ordering::Greater) => Compatibility::PeerNewer { minor },
        }
    }

    /// The refusal naming both versions, for an incompatible peer.
    pub fn refusal(&self, peer: &str) -> Option<String> {
        match self {
            Compatibility::Incompatible { major, minor } => Some(format!(
                "{peer} speaks protocol {major}.{minor}, this side speaks \
                 {PROTOCOL_MAJOR}.{PROTOCOL_MINOR}: incompatible major versions"
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_major_is_refused() {
        assert_eq!(
            Compatibility::of(PROTOCOL_MAJOR, PROTOCOL_MINOR),
            Compatibility::Same
        );
        assert!(Compatibility::of(PROTOCOL_MAJOR, PROTOCOL_MINOR + 3)
            .refusal("agent")
            .is_none());
        let refusal = Compatibility::of(PROTOCOL_MAJOR + 1, 0)
            .refusal("agent")
            .expect("refused");
        assert!(
            refusal.contains(&format!("{}.0", PROTOCOL_MAJOR + 1)),
            "{refusal}"
        );
        assert!(
            refusal.contains(&format!("{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")),
            "{refusal}"
        );
    }
}
