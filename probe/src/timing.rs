//! How long a "second" of a probe's settings lasts: a real second in the
//! agent, much less in this crate's tests.

use std::time::Duration;

/// The length of one second of `periodSeconds`, `timeoutSeconds` and
/// `initialDelaySeconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    second: Duration,
}

impl Timing {
    /// Real seconds.
    pub(crate) const REAL: Timing = Timing {
        second: Duration::from_secs(1),
    };

    /// Seconds that last `second` each.
    #[cfg(test)]
    pub(crate) fn scaled(second: Duration) -> Timing {
        Timing { second }
    }

    /// `count` seconds.
    pub(crate) fn seconds(self, count: u32) -> Duration {
        self.second * count
    }
}
