//! A generation counter with a condition variable: writers bump it when
//! something changed (a log line, a container state), waiters sleep until it
//! moves past the value they last saw or a timeout expires.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Wake {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Wake {
    /// The current generation.
    pub fn current(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces a change to every waiter.
    pub fn notify(&self) {
        let mut generation = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    /// Waits until the generation differs from `seen` or `timeout` passes.
    pub fn wait_past(&self, seen: u64, timeout: Duration) {
        let guard = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |g| *g == seen)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wait_returns_on_notify_or_timeout() {
        let wake = Arc::new(Wake::default());
        let seen = wake.current();
        let start = Instant::now();
        wake.wait_past(seen, Duration::from_millis(50));
        assert!(start.elapsed() >= Duration::from_millis(50));

        let other = Arc::clone(&wake);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.notify();
        });
        let start = Instant::now();
        wake.wait_past(seen, Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        assert_ne!(wake.current(), seen);
    }
}
