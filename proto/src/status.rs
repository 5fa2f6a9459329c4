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
