//! `compute_actions` on made-up pod states: kubelet's order and restart
//! rules, the self-stops, and the stop sequence.

use std::time::{Duration, Instant};

use super::*;
use crate::backoff::{INITIAL, RESET_AFTER};
use crate::controller::input::ProbeKind;
use crate::controller::state::{Stop, Traits};

fn traits(role: Role) -> Traits {
    Traits {
        role,
        ..Traits::default()
    }
}

/// A pod of app containers in these phases.
fn pod(restart: RestartPolicy, phases: &[Phase]) -> PodState {
    with_roles(restart, &vec![Role::App; phases.len()], phases)
}

fn with_roles(restart: RestartPolicy, roles: &[Role], phases: &[Phase]) -> PodState {
    let traits: Vec<Traits> = roles.iter().copied().map(traits).collect();
    let mut pod = PodState::new(restart, &traits, Instant::now());
    for (slot, phase) in pod.containers.iter_mut().zip(phases) {
        slot.phase = *phase;
        if *phase == Phase::Done {
            slot.last_exit = Some(0);
        }
        if phase.is_alive() {
            slot.ever_started = true;
        }
    }
    pod
}

fn exited(exit_code: i32) -> Phase {
    Phase::Exited { run: 0, exit_code }
}

fn running() -> Phase {
    Phase::Running { run: 2 }
}

fn killing(stage: KillStage, overdue: Overdue) -> Phase {
    Phase::Killing {
        run: 2,
        reason: KillReason::PodStopping,
        stage,
        overdue,
    }
}

fn stopping(mut pod: PodState) -> PodState {
    pod.stop = Some(Stop {
        reason: StopReason::Requested,
        force: false,
    });
    pod
}

#[test]
fn policies() {
    assert!(restarts(RestartPolicy::Always, 0));
    assert!(restarts(RestartPolicy::OnFailure, 3));
    assert!(!restarts(RestartPolicy::OnFailure, 0));
    assert!(!restarts(RestartPolicy::Never, 1));
}

#[test]
fn app_containers_start_one_by_one_in_spec_order() {
    let all_new = pod(RestartPolicy::Always, &[Phase::Pending; 3]);
    assert_eq!(compute_actions(&all_new), [Action::Start { container: 0 }]);
    let first_running = pod(
        RestartPolicy::Always,
        &[running(), Phase::Pending, Phase::Pending],
    );
    assert_eq!(
        compute_actions(&first_running),
        [Action::Start { container: 1 }]
    );
    // The next waits while a postStart hook runs.
    let in_post_start = pod(
        RestartPolicy::Always,
        &[Phase::PostStart { run: 0 }, Phase::Pending],
    );
    assert!(compute_actions(&in_post_start).is_empty());
    // A container that ended does not hold the next one back.
    let after_exit = pod(
        RestartPolicy::Never,
        &[Phase::Done, Phase::BackingOff { run: 0 }, Phase::Pending],
    );
    assert_eq!(
        compute_actions(&after_exit),
        [Action::Start { container: 2 }]
    );
}

#[test]
fn init_containers_run_one_at_a_time_before_the_apps() {
    let roles = [Role::Init, Role::Init, Role::App];
    let fresh = with_roles(RestartPolicy::Always, &roles, &[Phase::Pending; 3]);
    assert_eq!(compute_actions(&fresh), [Action::Start { container: 0 }]);
    let first_runs = with_roles(
        RestartPolicy::Always,
        &roles,
        &[running(), Phase::Pending, Phase::Pending],
    );
    assert!(compute_actions(&first_runs).is_empty());
    let first_done = with_roles(
        RestartPolicy::Always,
        &roles,
        &[Phase::Done, Phase::Pending, Phase::Pending],
    );
    assert_eq!(
        compute_actions(&first_done),
        [Action::Start { container: 1 }]
    );
    let both_done = with_roles(
        RestartPolicy::Always,
        &roles,
        &[Phase::Done, Phase::Done, Phase::Pending],
    );
    assert!(both_done.is_initialized());
    assert_eq!(
        compute_actions(&both_done),
        [Action::Start { container: 2 }]
    );
}

#[test]
fn an_init_container_must_complete() {
    let roles = [Role::Init, Role::App];
    // Exit 0 finishes it (whatever the policy); the next start follows
    // in the next round.
    for policy in [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ] {
        let ok = with_roles(policy, &roles, &[exited(0), Phase::Pending]);
        assert_eq!(compute_actions(&ok), [Action::Finish { container: 0 }]);
    }
    // A failure is retried unless the policy is Never.
    for policy in [RestartPolicy::Always, RestartPolicy::OnFailure] {
        let failed = with_roles(policy, &roles, &[exited(1), Phase::Pending]);
        assert_eq!(
            compute_actions(&failed),
            [Action::BackOff {
                container: 0,
                delay: Duration::ZERO
            }]
        );
    }
    // Under Never it fails the pod; the app never starts.
    let never = with_roles(RestartPolicy::Never, &roles, &[exited(1), Phase::Pending]);
    assert_eq!(
        compute_actions(&never),
        [
            Action::Finish { container: 0 },
            Action::StopPod {
                reason: StopReason::InitFailed
            }
        ]
    );
    // A finished but failed init container still blocks (create error).
    let mut broken = with_roles(
        RestartPolicy::Always,
        &roles,
        &[Phase::Done, Phase::Pending],
    );
    broken.containers[0].last_exit = None;
    assert!(compute_actions(&broken).is_empty());
}

#[test]
fn a_sidecar_lets_the_next_start_once_started_and_always_restarts() {
    let roles = [Role::Sidecar, Role::Init, Role::App];
    let mut sidecar_up = with_roles(
        RestartPolicy::Never,
        &roles,
        &[Phase::PostStart { run: 0 }, Phase::Pending, Phase::Pending],
    );
    sidecar_up.containers[0].ever_started = false;
    assert!(compute_actions(&sidecar_up).is_empty(), "not started yet");
    sidecar_up.containers[0].phase = running();
    sidecar_up.containers[0].ever_started = true;
    assert_eq!(
        compute_actions(&sidecar_up),
        [Action::Start { container: 1 }]
    );
    // Restarted under Never, and a restarting sidecar blocks nothing.
    let mut crashed = with_roles(
        RestartPolicy::Never,
        &roles,
        &[exited(0), Phase::Done, Phase::Pending],
    );
    crashed.containers[0].ever_started = true;
    assert_eq!(
        compute_actions(&crashed),
        [
            Action::BackOff {
                container: 0,
                delay: Duration::ZERO
            },
            Action::Start { container: 2 }
        ]
    );
}

#[test]
fn sidecars_do_not_keep_a_completed_pod_alive() {
    let roles = [Role::Sidecar, Role::App];
    let state = with_roles(RestartPolicy::Never, &roles, &[running(), exited(0)]);
    assert_eq!(
        compute_actions(&state),
        [
            Action::Finish { container: 1 },
            Action::StopPod {
                reason: StopReason::Completed
            }
        ]
    );
    // Under Always the app is restarted instead.
    let always = with_roles(RestartPolicy::Always, &roles, &[running(), exited(0)]);
    assert_eq!(
        compute_actions(&always),
        [Action::BackOff {
            container: 1,
            delay: Duration::ZERO
        }]
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
        let actions = compute_actions(&pod(policy, &[exited(code), running()]));
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
fn a_due_restart_is_the_next_run() {
    let state = pod(
        RestartPolicy::Always,
        &[
            Phase::RestartDue { run: 4 },
            Phase::BackingOff { run: 1 },
            running(),
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
fn a_failed_probe_or_hook_kills_the_run() {
    let mut state = pod(
        RestartPolicy::Always,
        &[running(), Phase::PostStart { run: 0 }],
    );
    state.containers[0].kill_requested = Some(KillReason::Unhealthy(ProbeKind::Liveness));
    state.containers[1].kill_requested = Some(KillReason::PostStartFailed);
    assert_eq!(
        compute_actions(&state),
        [
            Action::BeginKill {
                container: 0,
                reason: KillReason::Unhealthy(ProbeKind::Liveness)
            },
            Action::BeginKill {
                container: 1,
                reason: KillReason::PostStartFailed
            },
        ]
    );
    // Outside a pod stop the signal follows preStop at once.
    let after_pre_stop = with_roles(
        RestartPolicy::Always,
        &[Role::Sidecar, Role::App],
        &[killing(KillStage::AwaitTurn, Overdue::No), running()],
    );
    assert_eq!(
        compute_actions(&after_pre_stop),
        [Action::Signal {
            container: 0,
            signal: StopSignal::Term
        }]
    );
}

#[test]
fn a_stop_kills_what_lives_and_starts_nothing() {
    let state = stopping(pod(
        RestartPolicy::Always,
        &[
            running(),
            Phase::Pending,
            exited(1),
            Phase::BackingOff { run: 0 },
            Phase::RestartDue { run: 0 },
            Phase::PostStart { run: 0 },
            killing(KillStage::PreStop, Overdue::No),
            Phase::Done,
        ],
    ));
    assert_eq!(
        compute_actions(&state),
        [
            Action::BeginKill {
                container: 0,
                reason: KillReason::PodStopping
            },
            Action::Finish { container: 1 },
            Action::Finish { container: 2 },
            Action::Finish { container: 3 },
            Action::Finish { container: 4 },
            Action::BeginKill {
                container: 5,
                reason: KillReason::PodStopping
            },
        ]
    );
}

#[test]
fn sidecars_get_their_signal_after_the_apps_in_reverse_order() {
    let roles = [Role::Sidecar, Role::Sidecar, Role::App];
    let waiting = killing(KillStage::AwaitTurn, Overdue::No);
    let signalled = killing(KillStage::Signalled(StopSignal::Term), Overdue::No);
    let state = stopping(with_roles(
        RestartPolicy::Always,
        &roles,
        &[waiting, waiting, waiting],
    ));
    assert_eq!(
        compute_actions(&state),
        [Action::Signal {
            container: 2,
            signal: StopSignal::Term
        }]
    );
    let app_gone = stopping(with_roles(
        RestartPolicy::Always,
        &roles,
        &[waiting, waiting, Phase::Done],
    ));
    assert_eq!(
        compute_actions(&app_gone),
        [Action::Signal {
            container: 1,
            signal: StopSignal::Term
        }]
    );
    let last_sidecar_going = stopping(with_roles(
        RestartPolicy::Always,
        &roles,
        &[waiting, signalled, Phase::Done],
    ));
    assert!(compute_actions(&last_sidecar_going).is_empty());
    let all_but_first = stopping(with_roles(
        RestartPolicy::Always,
        &roles,
        &[waiting, Phase::Done, Phase::Done],
    ));
    assert_eq!(
        compute_actions(&all_but_first),
        [Action::Signal {
            container: 0,
            signal: StopSignal::Term
        }]
    );
}

#[test]
fn overdue_kills_then_gives_up() {
    let state = stopping(pod(
        RestartPolicy::Never,
        &[
            killing(KillStage::PreStop, Overdue::Kill),
            killing(KillStage::Signalled(StopSignal::Term), Overdue::Kill),
            killing(KillStage::Signalled(StopSignal::Kill), Overdue::Kill),
            killing(KillStage::Signalled(StopSignal::Kill), Overdue::GiveUp),
        ],
    ));
    assert_eq!(
        compute_actions(&state),
        [
            Action::Signal {
                container: 0,
                signal: StopSignal::Kill,
            },
            Action::Signal {
                container: 1,
                signal: StopSignal::Kill,
            },
            Action::Abandon { container: 3 },
        ]
    );
}

#[test]
fn the_loop_is_over_once_stopped_and_all_done() {
    let mut state = pod(RestartPolicy::Always, &[Phase::Done, Phase::Done]);
    assert!(!state.is_over(), "not stopped");
    state = stopping(state);
    assert!(state.is_over());
    assert!(compute_actions(&state).is_empty());
    state.containers[1].phase = killing(KillStage::Signalled(StopSignal::Term), Overdue::No);
    assert!(!state.is_over());
    assert!(compute_actions(&state).is_empty());
}

#[test]
fn stop_signals() {
    assert_eq!(StopSignal::Term.signal(Signal::SIGQUIT), Signal::SIGQUIT);
    assert_eq!(StopSignal::Kill.signal(Signal::SIGQUIT), Signal::SIGKILL);
}

#[test]
fn a_failed_creation_is_tried_again_and_holds_the_order() {
    let roles = [Role::Init, Role::App];
    let waiting = with_roles(
        RestartPolicy::Always,
        &roles,
        &[Phase::CreateFailed { run: 0 }, Phase::Pending],
    );
    assert!(compute_actions(&waiting).is_empty(), "the next waits");
    let due = with_roles(
        RestartPolicy::Always,
        &roles,
        &[Phase::CreateRetryDue { run: 0 }, Phase::Pending],
    );
    assert_eq!(
        compute_actions(&due),
        [Action::RetryCreate {
            container: 0,
            run: 0
        }]
    );
    let stopped = stopping(pod(
        RestartPolicy::Always,
        &[
            Phase::CreateFailed { run: 2 },
            Phase::CreateRetryDue { run: 0 },
        ],
    ));
    assert_eq!(
        compute_actions(&stopped),
        [
            Action::Finish { container: 0 },
            Action::Finish { container: 1 }
        ]
    );
}
