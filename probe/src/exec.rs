//! The `exec` probe (kubelet's `pkg/probe/exec`): the agent runs the
//! command in the container; exit code 0 is success and the output is the
//! failure message.

use std::sync::Arc;
use std::time::Duration;

use crate::{ExecOutcome, Outcome};

/// Kubelet keeps at most this much of a probe command's output.
const MAX_OUTPUT: usize = 10 * 1024;

/// Runs a command inside a container, for exec probes. Blocking: the
/// prober calls it from a blocking-pool thread, never from its runtime.
pub trait ExecRunner: Send + Sync + 'static {
    /// Runs `command` in the container, killing it once `timeout` passed.
    fn exec(&self, command: &[String], timeout: Duration) -> ExecOutcome;
}

/// Runs `command` through `runner` and judges the outcome.
pub(crate) async fn probe(
    runner: Arc<dyn ExecRunner>,
    command: &[String],
    timeout: Duration,
) -> Outcome {
    let owned = command.to_vec();
    let ran = tokio::task::spawn_blocking(move || runner.exec(&owned, timeout)).await;
    match ran {
        Err(err) => Outcome::Errored(format!("exec probe could not run: {err}")),
        Ok(outcome) => judge(command, outcome),
    }
}

/// Kubelet's verdict on a command's outcome.
fn judge(command: &[String], outcome: ExecOutcome) -> Outcome {
    match outcome {
        ExecOutcome::Exited { code: 0, .. } => Outcome::Success,
        ExecOutcome::Exited { output, .. } => {
            let kept = &output[..output.len().min(MAX_OUTPUT)];
            Outcome::Failure(String::from_utf8_lossy(kept).into_owned())
        }
        // The CRI's DeadlineExceeded, as kubelet words it.
        ExecOutcome::TimedOut => {
            Outcome::Failure(format!("command {:?} timed out", command.join(" ")))
        }
        ExecOutcome::CouldNotRun(reason) => Outcome::Errored(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Vec<String> {
        vec!["sh".to_owned(), "-c".to_owned(), "exit 1".to_owned()]
    }

    #[test]
    fn verdicts_follow_kubelet() {
        let ok = ExecOutcome::Exited {
            code: 0,
            output: b"fine".to_vec(),
        };
        assert_eq!(judge(&command(), ok), Outcome::Success);
        let bad = ExecOutcome::Exited {
            code: 1,
            output: b"not ready\n".to_vec(),
        };
        assert_eq!(
            judge(&command(), bad),
            Outcome::Failure("not ready\n".to_owned())
        );
        assert_eq!(
            judge(&command(), ExecOutcome::TimedOut),
            Outcome::Failure("command \"sh -c exit 1\" timed out".to_owned())
        );
        assert_eq!(
            judge(
                &command(),
                ExecOutcome::CouldNotRun("no such container".to_owned())
            ),
            Outcome::Errored("no such container".to_owned())
        );
    }

    #[test]
    fn output_is_cut_at_10_kib() {
        let long = ExecOutcome::Exited {
            code: 2,
            output: vec![b'x'; MAX_OUTPUT + 100],
        };
        match judge(&command(), long) {
            Outcome::Failure(text) => assert_eq!(text.len(), MAX_OUTPUT),
            other => panic!("unexpected {other:?}"),
        }
    }
}
