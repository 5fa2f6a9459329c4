//! The per-container controller thread: runs the container, records how
//! each run ended, and restarts it according to the pod's restart policy
//! with kubelet's back-off, until the pod stops.

use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podvm_proto::{ContainerState, RestartPolicy};

use crate::backoff::Backoff;
use crate::console::say;
use crate::container::launch::{launch, LaunchOutcome};
use crate::container::{Container, RunningInfo};
use crate::ids::{now_rfc3339, random_id};
use crate::pod::Pod;

/// Whether a run that ended with `exit_code` is restarted under `policy`.
pub fn restarts(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// Kubernetes' reason for a terminated container.
pub fn reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// Runs `container` until it is done for good; `first_attempt` is signalled
/// once its first start succeeded or failed.
pub fn run(pod: Arc<Pod>, container: Arc<Container>, first_attempt: Sender<()>) {
    let mut first_attempt = Some(first_attempt);
    let mut backoff = Backoff::default();
    let mut run_no = 0u32;
    loop {
        let outcome = launch(&pod.launch_context(), &container, run_no);
        let ended = match outcome {
            LaunchOutcome::CreateFailed(message) => {
                say!(
                    "container {} could not be created: {message}",
                    container.name()
                );
                container.set_create_error(message);
                return;
            }
            LaunchOutcome::StartFailed(message) => {
                say!("container {} failed to start: {message}", container.name());
                ContainerState::Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(message),
                    started_at: None,
                    finished_at: now_rfc3339(),
                }
            }
            LaunchOutcome::Started(running) => {
                let info = RunningInfo {
                    pid: running.pid,
                    cgroup: running.cgroup.clone(),
                    process: running.process.clone(),
                };
                let started_at = running.started_at.clone();
                if !container.set_running(started_at.clone(), info) {
                    let _ = kill(Pid::from_raw(running.pid), Signal::SIGKILL);
                }
                if let Some(tx) = first_attempt.take() {
                    let _ = tx.send(());
                }
                let exited = running.wait();
                ContainerState::Terminated {
                    exit_code: exited.code,
                    signal: exited.signal,
                    reason: reason(exited.code).into(),
                    message: None,
                    started_at: Some(started_at),
                    finished_at: exited.finished_at,
                }
            }
        };
        let exit_code = match &ended {
            ContainerState::Terminated { exit_code, .. } => *exit_code,
            _ => 128,
        };
        container.set_terminated(ended);
        if let Some(tx) = first_attempt.take() {
            let _ = tx.send(());
        }
        if container.is_stopping() || !restarts(pod.spec.restart_policy, exit_code) {
            container.mark_finished();
            return;
        }
        let delay = backoff.next(Instant::now());
        if !delay.is_zero() {
            container.enter_backoff(format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                delay.as_secs(),
                container.name(),
                pod.spec.name,
                pod.spec.namespace,
                pod.spec.uid
            ));
        }
        if container.sleep_unless_stopped(delay) {
            container.finish_after_backoff();
            return;
        }
        run_no += 1;
        let id = random_id().unwrap_or_else(|_| format!("{:064x}", u64::from(run_no)));
        container.begin_restart(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert!(restarts(RestartPolicy::Always, 0));
        assert!(restarts(RestartPolicy::OnFailure, 3));
        assert!(!restarts(RestartPolicy::OnFailure, 0));
        assert!(!restarts(RestartPolicy::Never, 1));
        assert_eq!(reason(0), "Completed");
        assert_eq!(reason(137), "Error");
    }
}
