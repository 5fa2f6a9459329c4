//! Kubernetes Pod status from what the agent reports: phase (kubelet's
//! rules), conditions, container statuses; and the `kubectl get pods`
//! columns.

use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as K8sContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_proto::{ContainerState, RestartPolicy, SandboxStatus};

use crate::owner::{FailureReason, Lifecycle};
use crate::state::PodRecord;

/// Builds `status` for `pod`. `None` means the agent could not be asked
/// (the VM is gone or unresponsive): phase `Unknown`.
pub fn pod_status(pod: &Pod, reported: Option<&SandboxStatus>) -> PodStatus {
    let Some(st) = reported else {
        return PodStatus {
            phase: Some("Unknown".into()),
            reason: Some("NodeLost".into()),
            message: Some("the pod's VM is not reachable".into()),
            ..Default::default()
        };
    };
    let restart = restart_policy(pod);
    let statuses: Vec<K8sContainerStatus> = st.containers.iter().map(container_status).collect();
    let phase = phase(pod, &statuses, restart);
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let started = st.started_at.as_deref().and_then(time);
    let changed = last_change(st).or(started.clone());
    let cond = |type_: &str, ok: bool, reason: Option<&str>, at: &Option<Time>| PodCondition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(Into::into),
        last_transition_time: at.clone(),
        ..Default::default()
    };
    let terminal = phase == "Succeeded" || phase == "Failed";
    let not_ready_reason = if terminal {
        Some("PodCompleted")
    } else {
        Some("ContainersNotReady")
    };
    let not_ready = (!all_ready).then_some(not_ready_reason).flatten();
    let conditions = vec![
        cond(
            "PodReadyToStartContainers",
            st.sandbox_ready,
            None,
            &started,
        ),
        cond("Initialized", true, None, &started),
        cond("Ready", all_ready, not_ready, &changed),
        cond("ContainersReady", all_ready, not_ready, &changed),
        cond("PodScheduled", true, None, &started),
    ];
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        start_time: started,
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    }
}

/// The Pod as `get` shows it: the owner's record of the pod's life on the
/// host joined with the container statuses the agent last reported (no
/// agent is asked: the owner keeps the record current).
pub fn pod_of_record(record: &PodRecord) -> Pod {
    let mut pod = record.pod.clone();
    let status = match &record.lifecycle {
        Lifecycle::Creating => creating(&pod),
        Lifecycle::Running => pod_status(&pod, record.last_status.as_ref()),
        Lifecycle::Deleting => {
            // What kubectl keys "Terminating" on.
            pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
            pod_status(&pod, record.last_status.as_ref())
        }
        Lifecycle::Failed { reason, message } => {
            failed(&pod, record.last_status.as_ref(), *reason, message)
        }
    };
    pod.status = Some(status);
    pod
}

/// A pod whose VM is being booted: kubelet's `ContainerCreating`.
fn creating(pod: &Pod) -> PodStatus {
    let statuses = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| K8sContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            ready: false,
            started: Some(false),
            state: Some(K8sState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ContainerCreating".into()),
                    message: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: Some("Pending".into()),
        container_statuses: Some(statuses),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    }
}

/// A pod that can no longer run on the host (its VM ended, could not boot,
/// ...): phase `Failed` with the reason and message; containers that were
/// not finished are reported the way kubelet reports containers it lost.
fn failed(
    pod: &Pod,
    last: Option<&SandboxStatus>,
    reason: FailureReason,
    message: &str,
) -> PodStatus {
    let mut status = match last {
        Some(st) => pod_status(pod, Some(st)),
        None => creating(pod),
    };
    for c in status.container_statuses.iter_mut().flatten() {
        let state = c.state.clone().unwrap_or_default();
        if state.terminated.is_none() {
            c.last_state = Some(state);
            c.state = Some(K8sState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: 137,
                    reason: Some("ContainerStatusUnknown".into()),
                    message: Some(
                        "The container could not be located when the pod was terminated".into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            });
            c.ready = false;
            c.started = Some(false);
        }
    }
    status.phase = Some("Failed".into());
    status.reason = Some(reason.as_str().into());
    status.message = Some(message.to_string());
    status
}

/// When a container last started or stopped: the readiness conditions
/// changed then.
fn last_change(st: &SandboxStatus) -> Option<Time> {
    st.containers
        .iter()
        .filter_map(|c| match &c.state {
            ContainerState::Running { started_at } => time(started_at),
            ContainerState::Terminated { finished_at, .. } => time(finished_at),
            ContainerState::Waiting { .. } => None,
        })
        .max_by_key(|t| t.0)
}

fn restart_policy(pod: &Pod) -> RestartPolicy {
    match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    }
}

fn time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(Time)
}

fn k8s_state(s: &ContainerState) -> K8sState {
    match s {
        ContainerState::Waiting { reason, message } => K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        ContainerState::Running { started_at } => K8sState {
            running: Some(ContainerStateRunning {
                started_at: time(started_at),
            }),
            ..Default::default()
        },
        ContainerState::Terminated {
            exit_code,
            signal,
            reason,
            message,
            started_at,
            finished_at,
        } => K8sState {
            terminated: Some(ContainerStateTerminated {
                exit_code: *exit_code,
                signal: *signal,
                reason: Some(reason.clone()),
                message: message.clone(),
                started_at: started_at.as_deref().and_then(time),
                finished_at: time(finished_at),
                container_id: None,
            }),
            ..Default::default()
        },
    }
}

fn container_status(c: &podvm_proto::ContainerStatus) -> K8sContainerStatus {
    let running = matches!(c.state, ContainerState::Running { .. });
    K8sContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: Some(format!("podvm://{}", c.container_id)),
        // No readiness probes yet: a running container is ready.
        ready: running,
        started: Some(running),
        restart_count: i32::try_from(c.restart_count).unwrap_or(i32::MAX),
        state: Some(k8s_state(&c.state)),
        last_state: Some(c.last_state.as_ref().map(k8s_state).unwrap_or_default()),
        ..Default::default()
    }
}

/// The pod phase, by kubelet's rules (`getPhase`).
fn phase(pod: &Pod, statuses: &[K8sContainerStatus], restart: RestartPolicy) -> &'static str {
    let expected = pod.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    let unknown = expected.saturating_sub(statuses.len());
    for s in statuses {
        let state = s.state.clone().unwrap_or_default();
        let last_terminated = s
            .last_state
            .as_ref()
            .and_then(|l| l.terminated.as_ref())
            .is_some();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if last_terminated {
            // Waiting to restart after an exit.
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if restart == RestartPolicy::Always {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart == RestartPolicy::Never {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// `kubectl get pods` columns: READY, STATUS, RESTARTS, computed the way
/// kubectl's printer does: the first container (in spec order) with a
/// waiting or terminated reason names the status, except that a pod with a
/// running container is not shown as "Completed".
pub fn summary(pod: &Pod) -> (String, String, i32) {
    let status = pod.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let total = pod.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let mut reason = status
        .reason
        .clone()
        .or(status.phase.clone())
        .unwrap_or_else(|| "Unknown".into());
    let (mut ready, mut restarts, mut has_running) = (0, 0, false);
    for s in statuses.iter().rev() {
        restarts += s.restart_count;
        let st = s.state.clone().unwrap_or_default();
        if let Some(w) = st.waiting.and_then(|w| w.reason).filter(|r| !r.is_empty()) {
            reason = w;
        } else if let Some(t) = st.terminated {
            reason = t
                .reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| match t.signal {
                    Some(sig) if sig != 0 => format!("Signal:{sig}"),
                    _ => format!("ExitCode:{}", t.exit_code),
                });
        } else if s.ready && st.running.is_some() {
            has_running = true;
            ready += 1;
        }
    }
    if reason == "Completed" && has_running {
        let pod_ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        reason = if pod_ready { "Running" } else { "NotReady" }.into();
    }
    if pod.metadata.deletion_timestamp.is_some() {
        reason = if status.reason.as_deref() == Some("NodeLost") {
            "Unknown"
        } else {
            "Terminating"
        }
        .into();
    }
    (format!("{ready}/{total}"), reason, restarts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvm_proto::ContainerStatus;

    fn pod(policy: &str, n: usize) -> Pod {
        let containers: Vec<serde_json::Value> = (0..n)
            .map(|i| serde_json::json!({"name": format!("c{i}"), "image": "busybox"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": policy, "containers": containers}
        }))
        .unwrap()
    }

    fn terminated(code: i32) -> ContainerState {
        ContainerState::Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: Some("2026-01-01T00:00:00Z".into()),
            finished_at: "2026-01-01T00:00:01Z".into(),
        }
    }

    fn report(states: Vec<ContainerState>) -> SandboxStatus {
        SandboxStatus {
            sandbox_ready: true,
            started_at: Some("2026-01-01T00:00:00Z".into()),
            containers: states
                .into_iter()
                .enumerate()
                .map(|(i, state)| ContainerStatus {
                    name: format!("c{i}"),
                    container_id: format!("id{i}"),
                    image: "busybox".into(),
                    image_id: "sha256:x".into(),
                    state,
                    last_state: None,
                    restart_count: 0,
                })
                .collect(),
            agent_rss_kib: None,
        }
    }

    fn phase_of(policy: &str, states: Vec<ContainerState>) -> String {
        let p = pod(policy, states.len());
        pod_status(&p, Some(&report(states))).phase.unwrap()
    }

    #[test]
    fn phases_follow_kubelet() {
        let running = || ContainerState::Running {
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        let waiting = || ContainerState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        };
        assert_eq!(
            phase_of("Never", vec![terminated(0), terminated(0)]),
            "Succeeded"
        );
        assert_eq!(
            phase_of("Never", vec![terminated(0), terminated(1)]),
            "Failed"
        );
        assert_eq!(
            phase_of("OnFailure", vec![terminated(0), terminated(1)]),
            "Running"
        );
        assert_eq!(phase_of("Always", vec![terminated(0)]), "Running");
        assert_eq!(phase_of("Never", vec![running(), terminated(0)]), "Running");
        assert_eq!(phase_of("Never", vec![waiting(), running()]), "Pending");
        let p = pod("Never", 1);
        assert_eq!(pod_status(&p, None).phase.as_deref(), Some("Unknown"));
    }

    #[test]
    fn summary_shows_reasons() {
        let mut p = pod("Never", 2);
        p.status = Some(pod_status(
            &p,
            Some(&report(vec![terminated(0), terminated(2)])),
        ));
        // The first container with a reason names the status (kubectl).
        assert_eq!(summary(&p), ("0/2".to_string(), "Completed".to_string(), 0));
        let mut p = pod("Never", 2);
        let running = ContainerState::Running {
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        p.status = Some(pod_status(&p, Some(&report(vec![terminated(0), running]))));
        assert_eq!(summary(&p), ("1/2".to_string(), "NotReady".to_string(), 0));
        let mut p = pod("Never", 2);
        p.status = Some(pod_status(
            &p,
            Some(&report(vec![terminated(3), terminated(0)])),
        ));
        assert_eq!(summary(&p).1, "Error");
    }

    fn record(lifecycle: Lifecycle, states: Vec<ContainerState>) -> PodRecord {
        PodRecord {
            pod: pod("Always", states.len().max(1)),
            vm: None,
            last_status: (!states.is_empty()).then(|| report(states)),
            lifecycle,
            events: vec![],
            watch: Default::default(),
        }
    }

    #[test]
    fn the_owners_record_decides_creating_failed_and_terminating() {
        let creating = pod_of_record(&record(Lifecycle::Creating, vec![]));
        assert_eq!(
            summary(&creating),
            ("0/1".into(), "ContainerCreating".into(), 0)
        );
        assert_eq!(creating.status.unwrap().phase.as_deref(), Some("Pending"));

        let running = || ContainerState::Running {
            started_at: "2026-01-01T00:00:00Z".into(),
        };
        let failed = pod_of_record(&record(
            Lifecycle::Failed {
                reason: FailureReason::VmExited,
                message: "the pod's VM process (qemu) was killed by SIGKILL".into(),
            },
            vec![running()],
        ));
        let st = failed.status.clone().unwrap();
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        assert_eq!(st.reason.as_deref(), Some("VMExited"));
        assert!(st.message.unwrap().contains("SIGKILL"));
        let c = &st.container_statuses.unwrap()[0];
        let t = c.state.clone().unwrap().terminated.unwrap();
        assert_eq!(
            (t.exit_code, t.reason.as_deref()),
            (137, Some("ContainerStatusUnknown"))
        );
        assert!(c.last_state.clone().unwrap().running.is_some());

        let deleting = pod_of_record(&record(Lifecycle::Deleting, vec![running()]));
        assert_eq!(summary(&deleting).1, "Terminating");
    }
}
