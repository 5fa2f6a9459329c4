//! Kubernetes Pod status from what the agent reports and what the host
//! keeps beside it: the agent decides the phase (kubelet's `getPhase`), its
//! conditions and the container statuses; the host adds `Ready` (with the
//! readiness gates set through `patch`), `PodScheduled`, and the host's own
//! paths: a pod being created, failed on the host, unreachable or being
//! deleted. [`printer`] turns the result into `kubectl get pods` columns.

mod conditions;
mod host;
pub mod patch;
mod printer;
#[cfg(test)]
mod tests;

use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as K8sContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_proto::{ContainerState, SandboxStatus};

pub use host::{track_ready, HostConditions};
pub use printer::{human_duration, summary};

use crate::owner::{DeleteRequest, FailureReason, Lifecycle, DELETE_FILE};
use crate::state::{PodRecord, StateDir};

/// What the host keeps beside a pod's record that its status shows: the
/// conditions set through `patch`, and `delete`'s request while the pod
/// is being deleted.
#[derive(Debug, Clone, Default)]
pub struct HostSide {
    pub conditions: HostConditions,
    pub deletion: Option<DeleteRequest>,
}

impl HostSide {
    /// Reads what the pod's folder holds (nothing there: the defaults).
    pub fn load(pod_dir: &std::path::Path) -> anyhow::Result<Self> {
        let deletion = std::fs::read(pod_dir.join(DELETE_FILE))
            .ok()
            .and_then(|d| serde_json::from_slice(&d).ok());
        Ok(HostSide {
            conditions: HostConditions::load(pod_dir)?,
            deletion,
        })
    }
}

/// The Pod as `get` and `describe` show it, read from the state directory:
/// the record joined with what the host keeps beside it.
pub fn pod_view(state: &StateDir, record: &PodRecord) -> anyhow::Result<Pod> {
    let (ns, name) = crate::manifest::pod_key(&record.pod)?;
    let host = HostSide::load(&state.pod_dir(&ns, &name))?;
    Ok(pod_of_record(record, &host))
}

/// Builds `status` for `pod` from the agent's report. `None` means the
/// agent could not be asked (the VM is gone or unresponsive): phase
/// `Unknown`.
pub fn pod_status(pod: &Pod, reported: Option<&SandboxStatus>, host: &HostConditions) -> PodStatus {
    let Some(st) = reported else {
        return PodStatus {
            phase: Some("Unknown".into()),
            reason: Some("NodeLost".into()),
            message: Some("the pod's VM is not reachable".into()),
            ..Default::default()
        };
    };
    PodStatus {
        phase: Some(st.phase.as_str().into()),
        reason: st.reason.clone(),
        message: st.message.clone(),
        conditions: Some(conditions::pod_conditions(pod, st, host)),
        init_container_statuses: (!st.init_containers.is_empty())
            .then(|| st.init_containers.iter().map(container_status).collect()),
        container_statuses: Some(st.containers.iter().map(container_status).collect()),
        start_time: st.started_at.as_deref().and_then(time),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    }
}

/// The Pod as `get` shows it: the owner's record of the pod's life on the
/// host joined with the status the agent last reported (no agent is
/// asked: the owner keeps the record current) and the host's side.
pub fn pod_of_record(record: &PodRecord, host: &HostSide) -> Pod {
    let mut pod = record.pod.clone();
    if let Some(spec) = pod.spec.as_mut() {
        // The pod runs here: it is bound to this node.
        spec.node_name = Some(crate::sandbox::node_name());
    }
    let last = record.last_status.as_ref();
    let status = match &record.lifecycle {
        Lifecycle::Creating => creating(&pod),
        Lifecycle::Running => pod_status(&pod, last, &host.conditions),
        Lifecycle::Deleting => {
            // What kubectl keys "Terminating" on: the API server sets the
            // deletion timestamp to the moment the grace period ends.
            let grace = host.deletion.as_ref().map(|d| d.grace_period_seconds);
            let asked = host
                .deletion
                .as_ref()
                .and_then(|d| d.requested_at.as_deref())
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .unwrap_or_else(jiff::Timestamp::now);
            let grace_span = jiff::SignedDuration::from_secs(grace.unwrap_or(0) as i64);
            pod.metadata.deletion_timestamp =
                Some(Time(asked.checked_add(grace_span).unwrap_or(asked)));
            pod.metadata.deletion_grace_period_seconds = grace.map(|g| g as i64);
            pod_status(&pod, last, &host.conditions)
        }
        Lifecycle::Failed { reason, message } => {
            failed(&pod, last, &host.conditions, *reason, message)
        }
    };
    pod.status = Some(status);
    pod
}

/// A pod whose VM is being booted: kubelet's default waiting state,
/// `PodInitializing` when the pod has init containers, else
/// `ContainerCreating`.
fn creating(pod: &Pod) -> PodStatus {
    let spec = pod.spec.clone().unwrap_or_default();
    let inits = spec.init_containers.unwrap_or_default();
    let reason = if inits.is_empty() {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let waiting = |c: &k8s_openapi::api::core::v1::Container| K8sContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        ready: false,
        started: Some(false),
        state: Some(K8sState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    PodStatus {
        phase: Some("Pending".into()),
        init_container_statuses: (!inits.is_empty()).then(|| inits.iter().map(waiting).collect()),
        container_statuses: Some(spec.containers.iter().map(waiting).collect()),
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
    host: &HostConditions,
    reason: FailureReason,
    message: &str,
) -> PodStatus {
    let mut status = match last {
        Some(st) => pod_status(pod, Some(st), host),
        None => creating(pod),
    };
    let lists = status
        .init_container_statuses
        .iter_mut()
        .chain(status.container_statuses.iter_mut());
    for c in lists.flatten() {
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
    // kubelet's conditions of a pod in a terminal phase.
    for c in status.conditions.iter_mut().flatten() {
        if c.type_ == "Ready" || c.type_ == "ContainersReady" {
            c.status = "False".into();
            c.reason = Some("PodCompleted".into());
            c.message = None;
        }
    }
    status.phase = Some("Failed".into());
    status.reason = Some(reason.as_str().into());
    status.message = Some(message.to_string());
    status
}

/// Now in RFC 3339, to the second (as the API server keeps times).
pub(crate) fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

pub(crate) fn time(s: &str) -> Option<Time> {
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
    K8sContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: Some(format!("podvm://{}", c.container_id)),
        ready: c.ready,
        started: Some(c.started),
        restart_count: i32::try_from(c.restart_count).unwrap_or(i32::MAX),
        state: Some(k8s_state(&c.state)),
        last_state: Some(c.last_state.as_ref().map(k8s_state).unwrap_or_default()),
        ..Default::default()
    }
}
