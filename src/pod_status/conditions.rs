//! Pod conditions in Kubernetes' order and shape: the agent's
//! `PodReadyToStartContainers`, `Initialized` and `ContainersReady`; the
//! host's `Ready` (kubelet's `GeneratePodReadyCondition`: `ContainersReady`
//! and every readiness gate's condition `True`) and `PodScheduled`; then
//! the conditions set through the status subresource (readiness gates),
//! as the API server keeps them.

use k8s_openapi::api::core::v1::{Pod, PodCondition as K8sCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_proto::{PodCondition, PodConditionType, SandboxStatus};
use serde::{Deserialize, Serialize};

use super::host::HostConditions;
use super::time;

/// The condition types kubelet (and the scheduler) own: `patch` refuses
/// them. In the order kubelet lists them.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// A condition's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub const ALL: [&'static str; 3] = ["False", "True", "Unknown"];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "True" => Some(ConditionStatus::True),
            "False" => Some(ConditionStatus::False),
            "Unknown" => Some(ConditionStatus::Unknown),
            _ => None,
        }
    }
}

/// A condition set through the status subresource (a readiness gate's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCondition {
    pub condition_type: String,
    pub status: ConditionStatus,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// RFC 3339; moves only when `status` changes.
    pub last_transition_time: String,
    #[serde(default)]
    pub last_probe_time: Option<String>,
}

/// `Ready` without its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyDecision {
    pub status: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// The condition types of the pod's `spec.readinessGates`.
pub fn readiness_gates(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.readiness_gates.iter().flatten())
        .map(|g| g.condition_type.clone())
        .collect()
}

/// The agent's condition of `kind`.
pub fn reported(st: &SandboxStatus, kind: PodConditionType) -> Option<&PodCondition> {
    st.conditions.iter().find(|c| c.condition_type == kind)
}

/// kubelet's `GeneratePodReadyCondition`: `ContainersReady`'s status,
/// reason and message while it is not True; else False with
/// `ReadinessGatesNotReady` when a gate's condition is missing or not
/// True; else True.
pub fn decide_ready(
    gates: &[String],
    containers_ready: Option<&PodCondition>,
    set: &[GateCondition],
) -> ReadyDecision {
    match containers_ready {
        Some(c) if c.status => {}
        Some(c) => {
            return ReadyDecision {
                status: false,
                reason: c.reason.clone(),
                message: c.message.clone(),
            }
        }
        None => {
            return ReadyDecision {
                status: false,
                reason: None,
                message: None,
            }
        }
    }
    let unready: Vec<String> = gates
        .iter()
        .filter_map(
            |gate| match set.iter().find(|c| &c.condition_type == gate) {
                None => Some(format!(
                    "corresponding condition of pod readiness gate {gate:?} does not exist."
                )),
                Some(c) if c.status != ConditionStatus::True => Some(format!(
                    "the status of pod readiness gate {gate:?} is not \"True\", but {}",
                    c.status.as_str()
                )),
                Some(_) => None,
            },
        )
        .collect();
    if unready.is_empty() {
        ReadyDecision {
            status: true,
            reason: None,
            message: None,
        }
    } else {
        ReadyDecision {
            status: false,
            reason: Some("ReadinessGatesNotReady".into()),
            message: Some(unready.join(", ")),
        }
    }
}

/// When `Ready` last changed. Without readiness gates it changes with
/// `ContainersReady`. With them, the host's mark says since when it has
/// had its status; a mark that disagrees has not caught up with a change
/// yet (it is written right after), and the change is the latest of its
/// inputs' transitions.
fn ready_since(
    decision: &ReadyDecision,
    gates: &[String],
    containers_ready: Option<&PodCondition>,
    host: &HostConditions,
) -> Option<Time> {
    let cr_time = containers_ready.and_then(|c| time(&c.last_transition_time));
    if gates.is_empty() {
        return cr_time;
    }
    match &host.ready {
        Some(mark) if mark.status == decision.status => time(&mark.since),
        _ => host
            .gates
            .iter()
            .filter_map(|g| time(&g.last_transition_time))
            .chain(cr_time)
            .max_by_key(|t| t.0),
    }
}

fn k8s(c: &PodCondition) -> K8sCondition {
    K8sCondition {
        type_: c.condition_type.as_str().into(),
        status: if c.status { "True" } else { "False" }.into(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        last_transition_time: time(&c.last_transition_time),
        ..Default::default()
    }
}

/// `status.conditions` of a pod the agent reported on.
pub fn pod_conditions(pod: &Pod, st: &SandboxStatus, host: &HostConditions) -> Vec<K8sCondition> {
    let gates = readiness_gates(pod);
    let cr = reported(st, PodConditionType::ContainersReady);
    let decision = decide_ready(&gates, cr, &host.gates);
    let ready = K8sCondition {
        type_: "Ready".into(),
        status: if decision.status { "True" } else { "False" }.into(),
        last_transition_time: ready_since(&decision, &gates, cr, host),
        reason: decision.reason,
        message: decision.message,
        ..Default::default()
    };
    let scheduled = K8sCondition {
        type_: "PodScheduled".into(),
        status: "True".into(),
        last_transition_time: pod.metadata.creation_timestamp.clone(),
        ..Default::default()
    };
    let mut out = Vec::new();
    out.extend(reported(st, PodConditionType::PodReadyToStartContainers).map(k8s));
    out.extend(reported(st, PodConditionType::Initialized).map(k8s));
    out.push(ready);
    out.extend(cr.map(k8s));
    out.push(scheduled);
    out.extend(host.gates.iter().map(|g| K8sCondition {
        type_: g.condition_type.clone(),
        status: g.status.as_str().into(),
        reason: g.reason.clone(),
        message: g.message.clone(),
        last_transition_time: time(&g.last_transition_time),
        last_probe_time: g.last_probe_time.as_deref().and_then(time),
        ..Default::default()
    }));
    out
}
