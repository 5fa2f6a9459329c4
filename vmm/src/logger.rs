//! A small stderr logger for the `podvm-vmm` binary: each line carries the
//! milliseconds since the logger started, so start-up phases can be timed.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger {
    started: Instant,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let ms = self.started.elapsed().as_secs_f64() * 1000.0;
            // A log line that cannot be written has nowhere else to go.
            let _ = writeln!(
                std::io::stderr().lock(),
                "[podvm-vmm {ms:9.3}ms {:5}] {}",
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger at `level`; later calls only change the level.
pub fn init(level: LevelFilter) {
    static LOGGER: OnceLock<StderrLogger> = OnceLock::new();
    let logger = LOGGER.get_or_init(|| StderrLogger {
        started: Instant::now(),
    });
    // Fails only if another logger is installed, which then stays in charge.
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}
