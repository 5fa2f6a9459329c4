//! A small stderr logger for the `podvm-vmm` binary: each line carries the
//! milliseconds since the logger started, so start-up phases can be timed.
//!
//! Much of what the VMM logs is caused by the guest (dropped packets,
//! refused connections, broken drivers), so a guest could make it log on
//! every exit and fill the disk behind stderr. At the default levels (info
//! and quieter) at most [`MAX_LINES_PER_SECOND`] lines are written each
//! second; the rest are counted and the count is reported with the next
//! line written. `--log-level debug`/`trace` asks for everything and gets it.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

/// Lines written per second at most, at info level and quieter.
pub const MAX_LINES_PER_SECOND: u32 = 50;

/// Lines written in the current second, and those held back.
#[derive(Debug, Default)]
struct Budget {
    second: u64,
    used: u32,
    suppressed: u64,
}

impl Budget {
    /// Whether a line may be written in `second`; `Some(n)`: yes, after
    /// saying that `n` lines were held back (0: none).
    fn admit(&mut self, second: u64) -> Option<u64> {
        if second != self.second {
            self.second = second;
            self.used = 0;
        }
        if self.used < MAX_LINES_PER_SECOND {
            self.used += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

struct StderrLogger {
    started: Instant,
    budget: Mutex<Budget>,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let elapsed = self.started.elapsed();
        let suppressed = if log::max_level() >= LevelFilter::Debug {
            0
        } else {
            let mut budget = self
                .budget
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match budget.admit(elapsed.as_secs()) {
                Some(n) => n,
                None => return,
            }
        };
        let ms = elapsed.as_secs_f64() * 1000.0;
        let mut stderr = std::io::stderr().lock();
        // A log line that cannot be written has nowhere else to go.
        if suppressed > 0 {
            let _ = writeln!(
                stderr,
                "[podvm-vmm {ms:9.3}ms WARN ] {suppressed} log lines suppressed \
                 (more than {MAX_LINES_PER_SECOND} per second)"
            );
        }
        let _ = writeln!(
            stderr,
            "[podvm-vmm {ms:9.3}ms {:5}] {}",
            record.level(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Installs the logger at `level`; later calls only change the level.
pub fn init(level: LevelFilter) {
    static LOGGER: OnceLock<StderrLogger> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| StderrLogger {
        started: Instant::now(),
        budget: Mutex::default(),
    });
    // Fails only if another logger is installed, which then stays in charge.
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_per_second_and_counted() {
        let mut budget = Budget::default();
        for _ in 0..MAX_LINES_PER_SECOND {
            assert_eq!(budget.admit(7), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(budget.admit(7), None);
        }
        assert_eq!(budget.admit(8), Some(1000), "the next second says how many");
        assert_eq!(budget.admit(8), Some(0));
    }
}
