//! Taking a pod down: stop its containers with the grace period `delete`
//! asked for, power the VM off, stop whatever is left of it, remove the
//! pod's state. Done by the pod's owner on `delete`, or by `delete` itself
//! when the pod has no owner (it then holds the owner lock meanwhile).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::keeper::Keeper;
use super::lifecycle::Lifecycle;
use super::link::AgentLink;
use crate::hypervisor::VmRecord;
use crate::sandbox::DEFAULT_GRACE_SECONDS;
use crate::state::StateDir;

/// What `delete` asks for, written before it signals the owner.
pub const DELETE_FILE: &str = "delete.json";
/// How long the guest may take to power off after `Shutdown`.
const POWER_OFF_WAIT: Duration = Duration::from_secs(10);

/// What `delete` asks of the owner.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DeleteRequest {
    pub grace_period_seconds: u64,
}

/// Stops the containers (with the grace `delete` asked for), powers the VM
/// off, stops what is left and removes the pod's state. Problems on the
/// way are logged (the rest is still done); failing to remove the state
/// is the error.
pub fn tear_down(
    state: &StateDir,
    dir: &Path,
    keeper: &Keeper,
    vm: Option<&VmRecord>,
    agent: Option<&dyn AgentLink>,
) -> anyhow::Result<()> {
    let record = keeper.snapshot();
    let grace = std::fs::read(dir.join(DELETE_FILE))
        .ok()
        .and_then(|d| serde_json::from_slice::<DeleteRequest>(&d).ok())
        .map(|r| r.grace_period_seconds)
        .unwrap_or_else(|| default_grace(&record.pod));
    let _ = keeper.update(|r| r.lifecycle = Lifecycle::Deleting);
    if let (Some(agent), Some(vm)) = (agent, vm) {
        if vm.is_running() {
            let grace = Duration::from_secs(grace);
            if let Err(e) = agent.stop_sandbox(grace, grace + Duration::from_secs(15)) {
                eprintln!("podvm: the agent did not stop the containers cleanly: {e}");
            }
            if let Err(e) = agent.shutdown() {
                eprintln!("podvm: the agent did not shut the VM down: {e}");
            }
        }
    }
    if let Some(vm) = vm {
        vm.stop(POWER_OFF_WAIT);
    }
    let (ns, name) = crate::manifest::pod_key(&record.pod)?;
    state.remove(&ns, &name)
}

/// The pod's `terminationGracePeriodSeconds`, or Kubernetes' default.
pub fn default_grace(pod: &k8s_openapi::api::core::v1::Pod) -> u64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .map(|g| g.max(0) as u64)
        .unwrap_or(DEFAULT_GRACE_SECONDS)
}
