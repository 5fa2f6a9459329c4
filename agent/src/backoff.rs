//! kubelet's container restart back-off: the first restart is immediate,
//! then 10 s, doubling up to 300 s; the back-off is forgotten when the
//! container ran for more than 10 minutes (twice the maximum) since its last
//! restart (kubelet's `flowcontrol.Backoff` with `hasExpired`).

use std::time::{Duration, Instant};

/// First non-zero delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Largest delay.
pub const MAX: Duration = Duration::from_secs(300);
/// Running this long since the last restart resets the back-off.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Back-off state of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The next delay and when the back-off was last advanced.
    entry: Option<(Duration, Instant)>,
}

impl Backoff {
    /// Whether the back-off still counts at `now` (the last restart was
    /// less than [`RESET_AFTER`] ago); the delay it would give if so.
    fn current(&self, now: Instant) -> Option<(Duration, Instant)> {
        self.entry
            .filter(|(_, updated)| now.saturating_duration_since(*updated) <= RESET_AFTER)
    }

    /// The delay before restarting a container that exited at `now`,
    /// without moving the back-off on (see [`Backoff::advance`]).
    pub fn delay(&self, now: Instant) -> Duration {
        self.current(now).map_or(Duration::ZERO, |(delay, _)| delay)
    }

    /// Moves the back-off on for a restart after an exit at `now`: the
    /// next delay doubles (up to [`MAX`]), or starts again at [`INITIAL`]
    /// once the back-off was forgotten.
    pub fn advance(&mut self, now: Instant) {
        self.entry = Some(match self.current(now) {
            Some((delay, _)) => ((delay * 2).min(MAX), now + delay),
            None => (INITIAL, now),
        });
    }

    /// [`Backoff::delay`], then [`Backoff::advance`].
    #[cfg(test)]
    pub fn next(&mut self, now: Instant) -> Duration {
        let delay = self.delay(now);
        self.advance(now);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            let d = b.next(now);
            delays.push(d.as_secs());
            now += d + Duration::from_secs(1);
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        now += RESET_AFTER + Duration::from_secs(1);
        assert_eq!(b.next(now), Duration::ZERO);
        assert_eq!(b.next(now + Duration::from_secs(1)), INITIAL);
    }

    #[test]
    fn delay_only_looks() {
        let mut b = Backoff::default();
        let now = Instant::now();
        assert_eq!(b.delay(now), Duration::ZERO);
        assert_eq!(b.delay(now), Duration::ZERO);
        b.advance(now);
        assert_eq!(b.delay(now), INITIAL);
        assert_eq!(
            b.delay(now + RESET_AFTER + Duration::from_secs(1)),
            Duration::ZERO
        );
        b.advance(now);
        assert_eq!(b.delay(now), INITIAL * 2);
    }
}
