//! The pure step of the pod sync loop, kubelet's `computePodActions`: from
//! what the pod should do (restart policy, whether it is stopping) and
//! what its containers are doing ([`PodState`]), the list of things to do
//! now. No clock, no I/O: the loop (`sync.rs`) applies inputs to the
//! state, calls [`compute_actions`], and carries the actions out.
//!
//! The order rules are kubelet's: init containers one at a time, each
//! completing before the next starts; a sidecar lets the next one start
//! once it has started; app containers start in spec order, each one's
//! postStart ending before the next starts; when every app container has
//! ended for good, the sidecars are stopped; on a stop the app containers
//! get their stop signal first, the sidecars after them in reverse order.

use std::time::Duration;

use nix::sys::signal::Signal;
use podvm_proto::RestartPolicy;

pub use super::state::{KillReason, PodState, StopReason, StopSignal};
use super::state::{KillStage, Overdue, Phase, Role, Slot};

/// Whether an app container's run that ended with `exit_code` is
/// restarted under `policy`.
pub fn restarts(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

impl StopSignal {
    /// The signal, for a container whose own stop signal is `term`.
    pub fn signal(self, term: Signal) -> Signal {
        match self {
            StopSignal::Term => term,
            StopSignal::Kill => Signal::SIGKILL,
        }
    }
}

/// One thing the loop does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create and start a container's first run.
    Start { container: usize },
    /// The last run ended and another follows after `delay` (zero: at
    /// once; otherwise it waits in CrashLoopBackOff).
    BackOff { container: usize, delay: Duration },
    /// Create and start run `run` after a back-off.
    Restart { container: usize, run: u32 },
    /// Try again to create and start run `run`.
    RetryCreate { container: usize, run: u32 },
    /// It will not run again.
    Finish { container: usize },
    /// Start killing its live run: preStop, then (in turn) the stop signal.
    BeginKill {
        container: usize,
        reason: KillReason,
    },
    /// Send `signal` to its live run.
    Signal {
        container: usize,
        signal: StopSignal,
    },
    /// Stop waiting for a process that outlived SIGKILL.
    Abandon { container: usize },
    /// The pod stops itself.
    StopPod { reason: StopReason },
}

/// What to do now. Empty when the pod is where it should be; the loop
/// then waits for the next input.
pub fn compute_actions(pod: &PodState) -> Vec<Action> {
    let mut actions = Vec::new();
    for (container, slot) in pod.containers.iter().enumerate() {
        let action = match pod.stop {
            None => react(pod, container, slot),
            Some(_) => while_stopping(pod, container, slot),
        };
        actions.extend(action);
    }
    if pod.stop.is_none() {
        if let Some(start) = next_start(pod) {
            actions.push(start);
        }
        if let Some(reason) = self_stop(pod, &actions) {
            actions.push(Action::StopPod { reason });
        }
    }
    actions
}

/// What follows for one container of a running pod from where it is
/// (first starts are [`next_start`]'s).
fn react(pod: &PodState, container: usize, slot: &Slot) -> Option<Action> {
    match slot.phase {
        Phase::Exited { exit_code, .. } => {
            let again = match slot.traits.role {
                // An init container must complete; under Never its
                // failure fails the pod.
                Role::Init => exit_code != 0 && pod.restart != RestartPolicy::Never,
                Role::Sidecar => true,
                Role::App => restarts(pod.restart, exit_code),
            };
            Some(if again {
                Action::BackOff {
                    container,
                    delay: slot.backoff.delay(pod.now),
                }
            } else {
                Action::Finish { container }
            })
        }
        Phase::RestartDue { run } => Some(Action::Restart {
            container,
            run: run.saturating_add(1),
        }),
        Phase::CreateRetryDue { run } => Some(Action::RetryCreate { container, run }),
        Phase::Killing { .. } => kill_progress(pod, container, slot),
        Phase::PostStart { .. } | Phase::Running { .. } => slot
            .kill_requested
            .map(|reason| Action::BeginKill { container, reason }),
        Phase::Pending | Phase::BackingOff { .. } | Phase::CreateFailed { .. } | Phase::Done => {
            None
        }
    }
}

/// The next first start, in kubelet's order; `None` while the order
/// says to wait.
fn next_start(pod: &PodState) -> Option<Action> {
    let ordered = pod
        .containers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.traits.role != Role::App)
        .chain(
            pod.containers
                .iter()
                .enumerate()
                .filter(|(_, s)| s.traits.role == Role::App),
        );
    for (container, slot) in ordered {
        if slot.phase == Phase::Pending {
            return Some(Action::Start { container });
        }
        let passed = match slot.traits.role {
            Role::Init => slot.completed_init(),
            Role::Sidecar => slot.ever_started,
            // The next app container waits for this one's postStart.
            Role::App => !matches!(slot.phase, Phase::PostStart { .. }),
        };
        if !passed {
            return None;
        }
    }
    None
}

/// Whether the pod stops itself now: an init container failed under
/// Never, or every app container ended for good (the sidecars are then
/// stopped and the pod is over).
fn self_stop(pod: &PodState, actions: &[Action]) -> Option<StopReason> {
    let finishing = |container: usize| actions.contains(&Action::Finish { container });
    let init_failed = pod.containers.iter().enumerate().any(|(i, s)| {
        s.traits.role == Role::Init
            && pod.restart == RestartPolicy::Never
            && matches!(s.phase, Phase::Exited { exit_code, .. } if exit_code != 0)
            && finishing(i)
    });
    if init_failed {
        return Some(StopReason::InitFailed);
    }
    let apps_over = pod
        .containers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.traits.role == Role::App)
        .all(|(i, s)| s.phase == Phase::Done || finishing(i));
    (apps_over && pod.is_initialized()).then_some(StopReason::Completed)
}

/// The action for one container of a stopping pod: kill what lives,
/// start nothing.
fn while_stopping(pod: &PodState, container: usize, slot: &Slot) -> Option<Action> {
    match slot.phase {
        Phase::Done => None,
        Phase::PostStart { .. } | Phase::Running { .. } => Some(Action::BeginKill {
            container,
            reason: KillReason::PodStopping,
        }),
        Phase::Killing { .. } => kill_progress(pod, container, slot),
        Phase::Pending
        | Phase::Exited { .. }
        | Phase::BackingOff { .. }
        | Phase::RestartDue { .. }
        | Phase::CreateFailed { .. }
        | Phase::CreateRetryDue { .. } => Some(Action::Finish { container }),
    }
}

/// The next step of a kill under way.
fn kill_progress(pod: &PodState, container: usize, slot: &Slot) -> Option<Action> {
    let Phase::Killing { stage, overdue, .. } = slot.phase else {
        return None;
    };
    match (overdue, stage) {
        (Overdue::GiveUp, _) => Some(Action::Abandon { container }),
        (Overdue::Kill, KillStage::Signalled(StopSignal::Kill)) => None,
        (Overdue::Kill, _) => Some(Action::Signal {
            container,
            signal: StopSignal::Kill,
        }),
        (Overdue::No, KillStage::AwaitTurn) if has_turn(pod, container) => Some(Action::Signal {
            container,
            signal: StopSignal::Term,
        }),
        (Overdue::No, _) => None,
    }
}

/// Whether a container being killed may get its stop signal: always,
/// but during a pod stop a sidecar waits until the app and init
/// containers and every sidecar after it have ended.
fn has_turn(pod: &PodState, container: usize) -> bool {
    let Some(slot) = pod.containers.get(container) else {
        return false;
    };
    if pod.stop.is_none() || slot.traits.role != Role::Sidecar {
        return true;
    }
    pod.containers.iter().enumerate().all(|(i, s)| {
        let waits_for = s.traits.role != Role::Sidecar || i > container;
        !waits_for || !s.phase.is_alive()
    })
}

#[cfg(test)]
mod tests;
