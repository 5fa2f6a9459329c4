//! Kubernetes Pod status from what the agent reports: phase (kubelet's
//! rules), conditions, container statuses; and the `kubectl get pods`
//! columns.

use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as K8sContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_proto::{ContainerState, RestartPolicy, SandboxStatus};

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
}
