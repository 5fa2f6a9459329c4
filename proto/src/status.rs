//! Status the agent reports: per container, in Kubernetes' terms.
//!
//! Timestamps are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};

/// The sandbox and all its containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SandboxStatus {
    /// Whether the sandbox (namespaces, hostname, hosts file) is set up.
    pub sandbox_ready: bool,
    /// When the sandbox was created.
    #[serde(default)]
    pub started_at: Option<String>,
    /// The pod's phase by kubelet's rules (`getPhase`), with the reason
    /// and message of a pod the agent failed (`DeadlineExceeded`,
    /// `Evicted`).
    #[serde(default)]
    pub phase: PodPhase,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// The conditions the agent decides (`PodReadyToStartContainers`,
    /// `Initialized`, `ContainersReady`); `Ready` is the host's, which
    /// adds the pod's readiness gates.
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    /// `initContainerStatuses`, in spec order.
    #[serde(default)]
    pub init_containers: Vec<ContainerStatus>,
    pub containers: Vec<ContainerStatus>,
    /// The agent's own resident memory, in KiB (for benchmarks).
    #[serde(default)]
    pub agent_rss_kib: Option<u64>,
}

/// Kubernetes `ContainerStatus`, as seen by the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub name: String,
    pub container_id: String,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    #[serde(default)]
    pub last_state: Option<ContainerState>,
    pub restart_count: u32,
    /// Its readiness probe succeeded (no probe: it is running and started).
    #[serde(default)]
    pub ready: bool,
    /// Its startup probe succeeded (no probe: it is running).
    #[serde(default)]
    pub started: bool,
}

/// Kubernetes' pod phases as the agent decides them (`Unknown` is the
/// host's: the agent could not be asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PodPhase {
    #[default]
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    /// Kubernetes' string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

/// The pod conditions the agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodConditionType {
    PodReadyToStartContainers,
    Initialized,
    ContainersReady,
}

impl PodConditionType {
    /// Kubernetes' string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodConditionType::PodReadyToStartContainers => "PodReadyToStartContainers",
            PodConditionType::Initialized => "Initialized",
            PodConditionType::ContainersReady => "ContainersReady",
        }
    }
}

/// One pod condition: `status` True or False since `last_transition_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodCondition {
    pub condition_type: PodConditionType,
    pub status: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    pub last_transition_time: String,
}

/// Kubernetes `ContainerState`: exactly one of waiting, running, terminated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    Waiting {
        reason: String,
        #[serde(default)]
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        #[serde(default)]
        signal: Option<i32>,
        reason: String,
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        started_at: Option<String>,
        finished_at: String,
    },
}
