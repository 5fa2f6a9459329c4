//! The pod's phase from its containers' statuses, by kubelet's rules
//! (`pkg/kubelet/kubelet_pods.go`, `getPhase`): init containers that have
//! not completed keep it `Pending` (a failed one under `Never` fails it);
//! sidecars count while they run and not once they stopped; app
//! containers decide the rest with the restart policy.

use podvm_proto::{ContainerState, ContainerStatus, PodPhase, RestartPolicy};

/// One init container's status, and whether it is a sidecar.
pub struct InitStatus<'a> {
    pub sidecar: bool,
    pub status: &'a ContainerStatus,
}

fn last_exit(status: &ContainerStatus) -> Option<i32> {
    match &status.last_state {
        Some(ContainerState::Terminated { exit_code, .. }) => Some(*exit_code),
        _ => None,
    }
}

/// kubelet's `getPhase`. `terminal`: the pod is over (its containers will
/// not be restarted whatever the policy).
pub fn pod_phase(
    restart: RestartPolicy,
    init: &[InitStatus<'_>],
    apps: &[&ContainerStatus],
    terminal: bool,
) -> PodPhase {
    let (mut pending_init, mut failed_init) = (0, 0);
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for InitStatus { sidecar, status } in init {
        match (&status.state, sidecar) {
            (ContainerState::Running { .. }, false) => pending_init += 1,
            (ContainerState::Terminated { exit_code, .. }, false) => {
                if *exit_code != 0 {
                    failed_init += 1;
                }
            }
            (ContainerState::Waiting { .. }, false) => match last_exit(status) {
                Some(code) if code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            },
            (ContainerState::Running { .. }, true) => {
                if !status.started {
                    pending_init += 1;
                }
                running += 1;
            }
            // A stopped sidecar does not count for the phase.
            (ContainerState::Terminated { .. }, true) => {}
            (ContainerState::Waiting { .. }, true) => {
                if last_exit(status).is_none() {
                    pending_init += 1;
                    waiting += 1;
                }
            }
        }
    }
    let mut any_app_started = false;
    for status in apps {
        match &status.state {
            ContainerState::Running { .. } => {
                running += 1;
                any_app_started = true;
            }
            ContainerState::Terminated { exit_code, .. } => {
                stopped += 1;
                any_app_started = true;
                if *exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerState::Waiting { .. } => {
                if last_exit(status).is_some() {
                    stopped += 1;
                    any_app_started = true;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if failed_init > 0 && restart == RestartPolicy::Never {
        return PodPhase::Failed;
    }
    if (pending_init > 0 && !any_app_started) || waiting > 0 {
        return PodPhase::Pending;
    }
    if running > 0 {
        return PodPhase::Running;
    }
    if stopped == 0 {
        return PodPhase::Pending;
    }
    if terminal {
        return if stopped == succeeded {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
    }
    match restart {
        RestartPolicy::Always => PodPhase::Running,
        _ if stopped == succeeded => PodPhase::Succeeded,
        RestartPolicy::Never => PodPhase::Failed,
        RestartPolicy::OnFailure => PodPhase::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(
        state: ContainerState,
        last: Option<ContainerState>,
        started: bool,
    ) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            container_id: "id".into(),
            image: "busybox".into(),
            image_id: "sha256:x".into(),
            state,
            last_state: last,
            restart_count: 0,
            ready: false,
            started,
        }
    }

    fn running() -> ContainerState {
        ContainerState::Running {
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn waiting() -> ContainerState {
        ContainerState::Waiting {
            reason: "PodInitializing".into(),
            message: None,
        }
    }

    fn terminated(exit_code: i32) -> ContainerState {
        ContainerState::Terminated {
            exit_code,
            signal: None,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: None,
            finished_at: "2026-01-01T00:00:01Z".into(),
        }
    }

    fn init(sidecar: bool, s: &ContainerStatus) -> InitStatus<'_> {
        InitStatus { sidecar, status: s }
    }

    #[test]
    fn app_containers_decide_with_the_policy() {
        use PodPhase::*;
        use RestartPolicy::{Always, Never, OnFailure};
        let ok = status(terminated(0), None, false);
        let bad = status(terminated(1), None, false);
        let up = status(running(), None, true);
        let new = status(waiting(), None, false);
        let restarting = status(waiting(), Some(terminated(1)), false);
        let cases: Vec<(RestartPolicy, Vec<&ContainerStatus>, bool, PodPhase)> = vec![
            (Never, vec![&ok, &ok], false, Succeeded),
            (Never, vec![&ok, &bad], false, Failed),
            (OnFailure, vec![&ok, &bad], false, Running),
            (Always, vec![&ok, &ok], false, Running),
            (Always, vec![&ok, &ok], true, Succeeded),
            (Always, vec![&ok, &bad], true, Failed),
            (Never, vec![&up, &ok], false, Running),
            (Never, vec![&up, &new], false, Pending),
            (Always, vec![&restarting], false, Running),
        ];
        for (policy, apps, terminal, phase) in cases {
            assert_eq!(pod_phase(policy, &[], &apps, terminal), phase, "{policy:?}");
        }
    }

    #[test]
    fn init_containers_keep_the_pod_pending_or_fail_it() {
        let app = status(waiting(), None, false);
        let init_running = status(running(), None, true);
        let init_failed = status(terminated(1), None, false);
        let init_retrying = status(waiting(), Some(terminated(1)), false);
        let init_done = status(terminated(0), None, false);
        let app_up = status(running(), None, true);
        for policy in [RestartPolicy::Always, RestartPolicy::Never] {
            assert_eq!(
                pod_phase(policy, &[init(false, &init_running)], &[&app], false),
                PodPhase::Pending
            );
        }
        assert_eq!(
            pod_phase(
                RestartPolicy::Never,
                &[init(false, &init_failed)],
                &[&app],
                false
            ),
            PodPhase::Failed
        );
        assert_eq!(
            pod_phase(
                RestartPolicy::OnFailure,
                &[init(false, &init_retrying)],
                &[&app],
                false
            ),
            PodPhase::Pending
        );
        assert_eq!(
            pod_phase(
                RestartPolicy::Never,
                &[init(false, &init_done)],
                &[&app_up],
                false
            ),
            PodPhase::Running
        );
    }

    #[test]
    fn sidecars_count_while_they_run_only() {
        let sidecar_up = status(running(), None, true);
        let sidecar_starting = status(running(), None, false);
        let sidecar_gone = status(terminated(143), None, false);
        let app_done = status(terminated(0), None, false);
        let app_new = status(waiting(), None, false);
        // A sidecar that has not started holds the pod in Pending.
        assert_eq!(
            pod_phase(
                RestartPolicy::Never,
                &[init(true, &sidecar_starting)],
                &[&app_new],
                false
            ),
            PodPhase::Pending
        );
        // The app completed while the sidecar still runs: Running until it
        // is stopped, then Succeeded.
        assert_eq!(
            pod_phase(
                RestartPolicy::Never,
                &[init(true, &sidecar_up)],
                &[&app_done],
                false
            ),
            PodPhase::Running
        );
        assert_eq!(
            pod_phase(
                RestartPolicy::Never,
                &[init(true, &sidecar_gone)],
                &[&app_done],
                true
            ),
            PodPhase::Succeeded
        );
    }
}
