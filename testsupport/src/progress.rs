//! Waiting on progress instead of on the clock.
//!
//! A test that watches a slow process (a guest kernel booting under a
//! software-emulated KVM, say) must not fail because the shared host was
//! twice as slow today. So it waits for as long as the process keeps
//! making progress — every item on the channel (a console line, a log
//! line) is progress — and gives up only when nothing new came for the
//! stall limit, or at a generous last-resort limit on the whole wait. The
//! end it waits for is an event the caller recognises in an item, or the
//! channel closing (the process's output ended), never a point in time.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a wait may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// The longest time without any progress before the wait gives up.
    pub stall: Duration,
    /// The last-resort limit on the whole wait, progress or not.
    pub overall: Duration,
}

/// Why a wait gave up before its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// Nothing new came for `quiet` (the stall limit), `waited` into the wait.
    Stalled { quiet: Duration, waited: Duration },
    /// The last-resort limit ran out while progress was still coming.
    OutOfTime { waited: Duration },
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stalled { quiet, waited } => write!(
                f,
                "stalled: nothing new for {quiet:?} (the stall limit), {waited:?} into the wait"
            ),
            Self::OutOfTime { waited } => {
                write!(f, "still progressing at the last-resort limit ({waited:?})")
            }
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited<T> {
    /// The caller recognised its event in an item and returned `T`.
    Done(T),
    /// Every sender is gone: the watched output ended.
    Closed,
    /// No event: see [`GaveUp`].
    GaveUp(GaveUp),
}

/// The clock side of a wait: when it started, when progress last came.
/// Kept apart from the channel so its rules can be checked with made-up
/// instants.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    patience: Patience,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A wait starting at `now`.
    pub fn new(patience: Patience, now: Instant) -> Self {
        Self {
            patience,
            started: now,
            last: now,
        }
    }

    /// Records progress at `now`.
    pub fn advance(&mut self, now: Instant) {
        self.last = self.last.max(now);
    }

    /// How long to wait for the next item at `now`, or why not to.
    pub fn next_wait(&self, now: Instant) -> Result<Duration, GaveUp> {
        let waited = now.saturating_duration_since(self.started);
        if waited >= self.patience.overall {
            return Err(GaveUp::OutOfTime { waited });
        }
        let quiet = now.saturating_duration_since(self.last);
        if quiet >= self.patience.stall {
            return Err(GaveUp::Stalled { quiet, waited });
        }
        Ok((self.patience.stall - quiet).min(self.patience.overall - waited))
    }
}

/// Receives from `rx`, handing each item to `on_item`, until `on_item`
/// returns `Some` (the event), every sender is gone, or the wait gives up
/// by `patience`. Every item counts as progress.
pub fn wait_on_progress<M, T>(
    rx: &Receiver<M>,
    patience: Patience,
    mut on_item: impl FnMut(M) -> Option<T>,
) -> Waited<T> {
    let mut progress = Progress::new(patience, Instant::now());
    loop {
        let wait = match progress.next_wait(Instant::now()) {
            Ok(wait) => wait,
            Err(gave_up) => return Waited::GaveUp(gave_up),
        };
        match rx.recv_timeout(wait) {
            Ok(item) => {
                progress.advance(Instant::now());
                if let Some(done) = on_item(item) {
                    return Waited::Done(done);
                }
            }
            // The next turn of the loop says which limit it was.
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Waited::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    const PATIENCE: Patience = Patience {
        stall: Duration::from_secs(300),
        overall: Duration::from_secs(1200),
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn progress_keeps_the_wait_going_past_the_stall_limit() {
        let t0 = Instant::now();
        let mut p = Progress::new(PATIENCE, t0);
        assert_eq!(p.next_wait(t0), Ok(secs(300)));
        // A line every 200 s: each one restarts the stall limit, so the
        // wait goes on well past 300 s.
        for step in 1..=4 {
            let now = t0 + secs(200 * step);
            assert_eq!(p.next_wait(now), Ok(secs(100)), "waiting at {step}");
            p.advance(now);
            assert_eq!(p.next_wait(now), Ok(secs(300)));
        }
        // 1000 s in: the last-resort limit (1200 s) is nearer than a stall.
        let now = t0 + secs(1000);
        p.advance(now);
        assert_eq!(p.next_wait(now), Ok(secs(200)));
    }

    #[test]
    fn silence_for_the_stall_limit_gives_up_as_a_stall() {
        let t0 = Instant::now();
        let mut p = Progress::new(PATIENCE, t0);
        p.advance(t0 + secs(100));
        assert_eq!(p.next_wait(t0 + secs(399)), Ok(secs(1)));
        assert_eq!(
            p.next_wait(t0 + secs(400)),
            Err(GaveUp::Stalled {
                quiet: secs(300),
                waited: secs(400)
            })
        );
    }

    #[test]
    fn the_last_resort_limit_ends_even_a_progressing_wait() {
        let t0 = Instant::now();
        let mut p = Progress::new(PATIENCE, t0);
        p.advance(t0 + secs(1199));
        assert_eq!(p.next_wait(t0 + secs(1199)), Ok(secs(1)));
        assert_eq!(
            p.next_wait(t0 + secs(1200)),
            Err(GaveUp::OutOfTime { waited: secs(1200) })
        );
    }

    #[test]
    fn progress_never_moves_backwards() {
        let t0 = Instant::now();
        let mut p = Progress::new(PATIENCE, t0);
        p.advance(t0 + secs(250));
        p.advance(t0 + secs(10));
        assert_eq!(p.next_wait(t0 + secs(500)), Ok(secs(50)));
    }

    #[test]
    fn the_event_ends_the_wait_with_the_callers_value() {
        let (tx, rx) = channel();
        for i in 1..=5u32 {
            tx.send(i).expect("send");
        }
        let mut seen = Vec::new();
        let end = wait_on_progress(&rx, PATIENCE, |i| {
            seen.push(i);
            (i == 3).then_some(i * 10)
        });
        assert_eq!(end, Waited::Done(30));
        assert_eq!(seen, [1, 2, 3]);
        assert_eq!(rx.try_recv(), Ok(4), "items after the event stay queued");
    }

    #[test]
    fn the_senders_going_away_closes_the_wait() {
        let (tx, rx) = channel();
        tx.send(1u8).expect("send");
        drop(tx);
        let mut count = 0;
        let end: Waited<()> = wait_on_progress(&rx, PATIENCE, |_| {
            count += 1;
            None
        });
        assert_eq!(end, Waited::Closed);
        assert_eq!(count, 1);
    }

    #[test]
    fn a_silent_open_channel_stalls() {
        let (_tx, rx) = channel::<u8>();
        let patience = Patience {
            stall: Duration::from_millis(20),
            overall: secs(1200),
        };
        match wait_on_progress(&rx, patience, |_| Some(())) {
            Waited::GaveUp(GaveUp::Stalled { quiet, .. }) => {
                assert!(quiet >= patience.stall, "{quiet:?}")
            }
            other => panic!("expected a stall, got {other:?}"),
        }
    }
}
