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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// 0 (`--grace-period=0 --force`): the containers are killed at once,
    /// without their preStop hooks.
    pub grace_period_seconds: u64,
    /// When `delete` asked (RFC 3339): with the grace period, the pod's
    /// `deletionTimestamp`.
    #[serde(default)]
    pub requested_at: Option<String>,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use podvm_proto::{ClientError, EventBatch, SandboxSpec, SandboxStatus};

    use super::*;
    use crate::hypervisor::Hypervisor;
    use crate::owner::fakes::{plan, FailAt, FakeHypervisor};
    use crate::state::PodRecord;

    /// An agent that remembers the grace periods it was given.
    #[derive(Default)]
    struct Recording {
        graces: Mutex<Vec<Duration>>,
    }

    impl AgentLink for Recording {
        fn create_sandbox(&self, _: &SandboxSpec, _: Duration) -> Result<(), ClientError> {
            Ok(())
        }
        fn status(&self) -> Result<SandboxStatus, ClientError> {
            Ok(SandboxStatus::default())
        }
        fn events(&self, _: u64, _: u64) -> Result<EventBatch, ClientError> {
            Err(ClientError::Rpc {
                code: podvm_proto::Code::UNAVAILABLE,
                message: "no events here".into(),
            })
        }
        fn stop_sandbox(&self, grace: Duration, _: Duration) -> Result<(), ClientError> {
            self.graces.lock().unwrap().push(grace);
            Ok(())
        }
        fn shutdown(&self) -> Result<(), ClientError> {
            Ok(())
        }
    }

    fn grace_given(request: Option<DeleteRequest>) -> Vec<Duration> {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path());
        let dir = state.create_pod_dir("default", "web").unwrap();
        let config = plan(&dir).vm;
        std::fs::create_dir_all(&config.run_dir).unwrap();
        let vm = FakeHypervisor {
            fail: FailAt::Nowhere,
        }
        .start(&config)
        .unwrap();
        let pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"terminationGracePeriodSeconds": 30, "containers": []}
        }))
        .unwrap();
        let record = PodRecord {
            pod,
            vm: Some(vm.clone()),
            last_status: None,
            lifecycle: Lifecycle::Running,
            events: vec![],
            watch: Default::default(),
        };
        state.save(&record).unwrap();
        if let Some(r) = request {
            std::fs::write(dir.join(DELETE_FILE), serde_json::to_vec(&r).unwrap()).unwrap();
        }
        let agent = Recording::default();
        let keeper = Keeper::new(state.clone(), record);
        tear_down(&state, &dir, &keeper, Some(&vm), Some(&agent)).unwrap();
        assert!(!dir.exists(), "the pod's state is removed");
        assert!(!vm.processes[0].is_alive(), "the VM is stopped");
        let graces = agent.graces.lock().unwrap().clone();
        graces
    }

    #[test]
    fn the_agent_gets_the_grace_delete_asked_for_zero_included() {
        let forced = DeleteRequest {
            grace_period_seconds: 0,
            requested_at: None,
        };
        assert_eq!(grace_given(Some(forced)), [Duration::ZERO]);
        assert_eq!(
            grace_given(None),
            [Duration::from_secs(30)],
            "no request: the pod's terminationGracePeriodSeconds"
        );
    }
}
