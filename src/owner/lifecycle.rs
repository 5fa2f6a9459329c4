//! Where a pod is in its life on the host, as its owner records it: being
//! created, running, failed (with a typed reason), or being deleted. The
//! Kubernetes phase shown to users is derived from this and the agent's
//! container statuses (`pod_status`), never stored twice.

use serde::{Deserialize, Serialize};

/// Why a pod failed on the host side (the guest's own container failures
/// are in the container statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureReason {
    /// The VM process could not be started.
    VmStartFailed,
    /// The agent did not answer before the boot deadline.
    AgentUnreachable,
    /// The agent refused or failed to create the sandbox.
    SandboxCreateFailed,
    /// The VM process exited (or was killed) while the pod ran.
    VmExited,
    /// The VM was gone when a new owner took the pod over.
    VmLost,
}

impl FailureReason {
    /// The reason as `kubectl get pods` shows it (CamelCase, no spaces).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::VmStartFailed => "VMStartFailed",
            FailureReason::AgentUnreachable => "AgentUnreachable",
            FailureReason::SandboxCreateFailed => "SandboxCreateFailed",
            FailureReason::VmExited => "VMExited",
            FailureReason::VmLost => "VMLost",
        }
    }
}

/// The pod's life on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    /// `apply` recorded the pod; its owner is booting the VM.
    Creating,
    /// The sandbox was handed to the agent; the owner watches it.
    Running,
    /// It cannot run any more; `message` says what happened.
    Failed {
        reason: FailureReason,
        message: String,
    },
    /// `delete` asked the owner to stop it.
    Deleting,
}

impl Lifecycle {
    /// Records from before the owner existed had a running VM or none.
    pub fn legacy() -> Self {
        Lifecycle::Running
    }

    /// Whether an owner still has work to do for the pod.
    pub fn needs_owner(&self) -> bool {
        matches!(
            self,
            Lifecycle::Creating | Lifecycle::Running | Lifecycle::Deleting
        )
    }
}
