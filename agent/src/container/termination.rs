//! A run's termination message, as kubelet fills `state.terminated.message`:
//! what the run wrote at its `terminationMessagePath`, or, under
//! `FallbackToLogsOnError` when it wrote nothing and failed, the end of its
//! log (the reading is `volume::termination`'s).

use std::path::Path;

use podvm_proto::TerminationMessagePolicy;

use crate::volume::termination::{log_tail_message, read_termination_message};

/// The message of a run that ended with `exit_code`: the file at
/// `message_file`, else (by `policy`) the tail of the CRI log at `log`.
pub fn message(
    message_file: &Path,
    policy: TerminationMessagePolicy,
    log: &Path,
    exit_code: i32,
) -> Option<String> {
    if let Some(written) = read_termination_message(message_file) {
        return Some(written);
    }
    match policy {
        TerminationMessagePolicy::FallbackToLogsOnError if exit_code != 0 => {
            Some(log_tail_message(log)).filter(|m| !m.is_empty())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::{format_record, StdStream};

    fn log_of(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| {
                format_record(
                    "2026-01-01T00:00:00.000000000Z",
                    StdStream::Stderr,
                    false,
                    l.as_bytes(),
                )
            })
            .collect()
    }

    #[test]
    fn the_file_wins_then_the_log_on_error_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("termination-log");
        let log = dir.path().join("app.log");
        std::fs::write(&log, log_of(&["from the log"])).unwrap();
        let fallback = TerminationMessagePolicy::FallbackToLogsOnError;
        std::fs::write(&file, "bye").unwrap();
        assert_eq!(message(&file, fallback, &log, 1).as_deref(), Some("bye"));
        std::fs::write(&file, "").unwrap();
        assert_eq!(
            message(&file, fallback, &log, 1).as_deref(),
            Some("from the log\n")
        );
        assert_eq!(message(&file, fallback, &log, 0), None);
        assert_eq!(
            message(&file, TerminationMessagePolicy::File, &log, 1),
            None
        );
        assert_eq!(
            message(
                &dir.path().join("none"),
                TerminationMessagePolicy::File,
                &log,
                1
            ),
            None
        );
    }
}
