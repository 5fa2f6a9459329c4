//! The pure step of the pod sync loop, kubelet's `computePodActions`: from
//! what the pod should do (restart policy, whether it is stopping) and what
//! its containers are doing, the list of things to do now. No clock, no
//! I/O: the loop (`sync.rs`) applies inputs to a [`PodState`], calls
//! [`compute_actions`], and carries the actions out.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use podvm_proto::RestartPolicy;

use crate::backoff::Backoff;

/// Whether a run that ended with `exit_code` is restarted under `policy`.
pub fn restarts(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// A signal the loop sends to stop a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopSignal {
    /// The polite one, at the start of the grace period.
    Term,
    /// The one that cannot be refused, once the grace period is over.
    Kill,
}

impl StopSignal {
    pub fn signal(self) -> Signal {
        match self {
            StopSignal::Term => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        }
    }
}

/// How far a requested stop has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPhase {
    /// Running containers get SIGTERM and the grace period to end.
    Graceful,
    /// The grace period is over: running containers get SIGKILL.
    Forced,
    /// Even SIGKILL did not end them in time: the loop stops waiting.
    GaveUp,
}

/// Where one container is, as the loop sees it. A run is one process of
/// the container (a new container, in Kubernetes' terms), numbered from 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    #[default]
    Pending,
    /// Run `run`'s process is alive; `signalled` is the strongest stop
    /// signal sent to it.
    Running {
        run: u32,
        signalled: Option<StopSignal>,
    },
    /// Run `run` ended with `exit_code`; what follows is not decided yet.
    Exited { run: u32, exit_code: i32 },
    /// Run `run` ended and the next one waits out the back-off.
    BackingOff { run: u32 },
    /// Run `run` ended and the next one is due.
    RestartDue { run: u32 },
    /// It will not run again.
    Done,
}

/// One container's part of the pod's state: its phase and its restart
/// back-off (kept per container, as kubelet keys it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub phase: Phase,
    pub backoff: Backoff,
}

/// What [`compute_actions`] looks at: the pod's desired state (restart
/// policy, stop) and its containers' actual state, in spec order, at `now`.
#[derive(Debug, Clone)]
pub struct PodState {
    pub now: Instant,
    pub restart: RestartPolicy,
    /// `None` while the pod runs.
    pub stop: Option<StopPhase>,
    pub containers: Vec<Slot>,
}

impl PodState {
    /// A pod whose `containers` were not started yet.
    pub fn new(restart: RestartPolicy, containers: usize, now: Instant) -> Self {
        PodState {
            now,
            restart,
            stop: None,
            containers: vec![Slot::default(); containers],
        }
    }

    /// The pod was stopped and none of its containers will run again: the
    /// loop has nothing left to do.
    pub fn is_over(&self) -> bool {
        self.stop.is_some() && self.containers.iter().all(|c| c.phase == Phase::Done)
    }
}

/// One thing the loop does to a container (its index in the spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create and start its first run.
    Start { container: usize },
    /// The last run ended and another follows after `delay` (zero: at
    /// once; otherwise it waits in CrashLoopBackOff).
    BackOff { container: usize, delay: Duration },
    /// Create and start run `run` after a back-off.
    Restart { container: usize, run: u32 },
    /// It will not run again.
    Finish { container: usize },
    /// Send `signal` to its running process.
    Kill {
        container: usize,
        signal: StopSignal,
    },
    /// Stop waiting for a process that outlived SIGKILL.
    Abandon { container: usize },
}

/// What to do now, in spec order. Empty when the pod is where it should
/// be; the loop then waits for the next input.
pub fn compute_actions(pod: &PodState) -> Vec<Action> {
    pod.containers
        .iter()
        .enumerate()
        .filter_map(|(container, slot)| match pod.stop {
            None => while_running(pod, container, slot),
            Some(stop) => while_stopping(stop, container, &slot.phase),
        })
        .collect()
}

/// The action for one container of a running pod.
fn while_running(pod: &PodState, container: usize, slot: &Slot) -> Option<Action> {
    match slot.phase {
        Phase::Pending => Some(Action::Start { container }),
        Phase::Exited { exit_code, .. } if restarts(pod.restart, exit_code) => {
            Some(Action::BackOff {
                container,
                delay: slot.backoff.delay(pod.now),
            })
        }
        Phase::Exited { .. } => Some(Action::Finish { container }),
        Phase::RestartDue { run } => Some(Action::Restart {
            container,
            run: run.saturating_add(1),
        }),
        Phase::Running { .. } | Phase::BackingOff { .. } | Phase::Done => None,
    }
}

/// The action for one container of a stopping pod: kill what runs, start
/// nothing.
fn while_stopping(stop: StopPhase, container: usize, phase: &Phase) -> Option<Action> {
    match (stop, phase) {
        (_, Phase::Done) => None,
        (
            StopPhase::Graceful,
            Phase::Running {
                signalled: None, ..
            },
        ) => Some(Action::Kill {
            container,
            signal: StopSignal::Term,
        }),
        (StopPhase::Forced, Phase::Running { signalled, .. })
            if *signalled != Some(StopSignal::Kill) =>
        {
            Some(Action::Kill {
                container,
                signal: StopSignal::Kill,
            })
        }
        (StopPhase::GaveUp, Phase::Running { .. }) => Some(Action::Abandon { container }),
        (_, Phase::Running { .. }) => None,
        (
            _,
            Phase::Pending
            | Phase::Exited { .. }
            | Phase::BackingOff { .. }
            | Phase::RestartDue { .. },
        ) => Some(Action::Finish { container }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::{INITIAL, RESET_AFTER};

    fn pod(restart: RestartPolicy, phases: &[Phase]) -> PodState {
        let mut pod = PodState::new(restart, phases.len(), Instant::now());
        for (slot, phase) in pod.containers.iter_mut().zip(phases) {
            slot.phase = *phase;
        }
        pod
    }

    fn exited(exit_code: i32) -> Phase {
        Phase::Exited { run: 0, exit_code }
    }

    fn running(signalled: Option<StopSignal>) -> Phase {
        Phase::Running { run: 2, signalled }
    }

    #[test]
    fn policies() {
        assert!(restarts(RestartPolicy::Always, 0));
        assert!(restarts(RestartPolicy::OnFailure, 3));
        assert!(!restarts(RestartPolicy::OnFailure, 0));
        assert!(!restarts(RestartPolicy::Never, 1));
    }

    #[test]
    fn containers_start_in_spec_order() {
        let all_new = pod(RestartPolicy::Always, &[Phase::Pending; 3]);
        assert_eq!(
            compute_actions(&all_new),
            [
                Action::Start { container: 0 },
                Action::Start { container: 1 },
                Action::Start { container: 2 },
            ]
        );
        let some_running = pod(
            RestartPolicy::Always,
            &[running(None), Phase::Pending, Phase::Done, Phase::Pending],
        );
        assert_eq!(
            compute_actions(&some_running),
            [
                Action::Start { container: 1 },
                Action::Start { container: 3 },
            ]
        );
    }

    #[test]
    fn exits_follow_the_restart_policy() {
        let cases = [
            (RestartPolicy::Always, 0, true),
            (RestartPolicy::Always, 1, true),
            (RestartPolicy::OnFailure, 0, false),
            (RestartPolicy::OnFailure, 137, true),
            (RestartPolicy::Never, 0, false),
            (RestartPolicy::Never, 1, false),
        ];
        for (policy, code, restart) in cases {
            let actions = compute_actions(&pod(policy, &[exited(code)]));
            let expected = if restart {
                Action::BackOff {
                    container: 0,
                    delay: Duration::ZERO,
                }
            } else {
                Action::Finish { container: 0 }
            };
            assert_eq!(actions, [expected], "{policy:?} exit {code}");
        }
    }

    #[test]
    fn the_backoff_is_per_container() {
        let mut state = pod(RestartPolicy::Always, &[exited(1), exited(1), exited(1)]);
        let now = state.now;
        // The first container restarted once, the second three times, the
        // third long ago.
        state.containers[0].backoff.advance(now);
        for _ in 0..3 {
            state.containers[1].backoff.advance(now);
        }
        state.containers[2]
            .backoff
            .advance(now - RESET_AFTER - Duration::from_secs(1));
        assert_eq!(
            compute_actions(&state),
            [
                Action::BackOff {
                    container: 0,
                    delay: INITIAL,
                },
                Action::BackOff {
                    container: 1,
                    delay: INITIAL * 4,
                },
                Action::BackOff {
                    container: 2,
                    delay: Duration::ZERO,
                },
            ]
        );
    }

    #[test]
    fn a_due_restart_is_the_next_run_and_a_backoff_waits() {
        let state = pod(
            RestartPolicy::Always,
            &[
                Phase::RestartDue { run: 4 },
                Phase::BackingOff { run: 1 },
                running(None),
                Phase::Done,
            ],
        );
        assert_eq!(
            compute_actions(&state),
            [Action::Restart {
                container: 0,
                run: 5
            }]
        );
    }

    #[test]
    fn a_graceful_stop_terms_what_runs_and_starts_nothing() {
        let mut state = pod(
            RestartPolicy::Always,
            &[
                running(None),
                Phase::Pending,
                exited(1),
                Phase::BackingOff { run: 0 },
                Phase::RestartDue { run: 0 },
                running(Some(StopSignal::Term)),
                Phase::Done,
            ],
        );
        state.stop = Some(StopPhase::Graceful);
        assert_eq!(
            compute_actions(&state),
            [
                Action::Kill {
                    container: 0,
                    signal: StopSignal::Term,
                },
                Action::Finish { container: 1 },
                Action::Finish { container: 2 },
                Action::Finish { container: 3 },
                Action::Finish { container: 4 },
            ]
        );
    }

    #[test]
    fn after_the_grace_period_kill_then_give_up() {
        let mut state = pod(
            RestartPolicy::Never,
            &[
                running(Some(StopSignal::Term)),
                running(None),
                running(Some(StopSignal::Kill)),
                Phase::Done,
            ],
        );
        state.stop = Some(StopPhase::Forced);
        assert_eq!(
            compute_actions(&state),
            [
                Action::Kill {
                    container: 0,
                    signal: StopSignal::Kill,
                },
                Action::Kill {
                    container: 1,
                    signal: StopSignal::Kill,
                },
            ]
        );
        state.stop = Some(StopPhase::GaveUp);
        assert_eq!(
            compute_actions(&state),
            [
                Action::Abandon { container: 0 },
                Action::Abandon { container: 1 },
                Action::Abandon { container: 2 },
            ]
        );
    }

    #[test]
    fn the_loop_is_over_once_stopped_and_all_done() {
        let mut state = pod(RestartPolicy::Always, &[Phase::Done, Phase::Done]);
        assert!(!state.is_over(), "not stopped");
        assert!(compute_actions(&state).is_empty());
        state.stop = Some(StopPhase::Graceful);
        assert!(state.is_over());
        state.containers[1].phase = running(Some(StopSignal::Term));
        assert!(!state.is_over());
        assert!(compute_actions(&state).is_empty());
    }

    #[test]
    fn stop_signals() {
        assert_eq!(StopSignal::Term.signal(), Signal::SIGTERM);
        assert_eq!(StopSignal::Kill.signal(), Signal::SIGKILL);
    }
}
