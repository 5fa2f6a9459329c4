//! `exec` probes through a fake runner.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use podvm_probe::{ExecOutcome, ExecRunner, Outcome};
use podvm_proto::lifecycle::ProbeAction;
use support::prober;

/// Answers every command with one outcome, counting calls.
struct Fixed(ExecOutcome, AtomicUsize);

impl ExecRunner for Fixed {
    fn exec(&self, command: &[String], timeout: Duration) -> ExecOutcome {
        assert_eq!(command, ["cat", "/tmp/healthy"]);
        assert_eq!(timeout, Duration::from_secs(2));
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.clone()
    }
}

fn probe(outcome: ExecOutcome) -> (Outcome, usize) {
    let runner = Arc::new(Fixed(outcome, AtomicUsize::new(0)));
    let action = ProbeAction::Exec {
        command: vec!["cat".to_owned(), "/tmp/healthy".to_owned()],
    };
    let outcome = prober().probe_once(&action, Duration::from_secs(2), runner.clone());
    (outcome, runner.1.load(Ordering::SeqCst))
}

#[test]
fn exit_zero_is_success() {
    assert_eq!(
        probe(ExecOutcome::Exited {
            code: 0,
            output: Vec::new()
        }),
        (Outcome::Success, 1)
    );
}

#[test]
fn nonzero_exit_fails_with_the_output() {
    let failed = ExecOutcome::Exited {
        code: 1,
        output: b"cat: /tmp/healthy: No such file or directory\n".to_vec(),
    };
    assert_eq!(
        probe(failed),
        (
            Outcome::Failure("cat: /tmp/healthy: No such file or directory\n".to_owned()),
            1
        )
    );
}

#[test]
fn timeout_reads_like_kubelet() {
    assert_eq!(
        probe(ExecOutcome::TimedOut),
        (
            Outcome::Failure("command \"cat /tmp/healthy\" timed out".to_owned()),
            1
        )
    );
}

#[test]
fn could_not_run_is_retried_then_errored() {
    assert_eq!(
        probe(ExecOutcome::CouldNotRun("container not running".to_owned())),
        (Outcome::Errored("container not running".to_owned()), 3)
    );
}
