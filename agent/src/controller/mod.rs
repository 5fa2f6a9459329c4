//! The pod controller: ONE sync loop per pod, in kubelet's model
//! (`kuberuntime_manager.go`: `computePodActions`, then `SyncPod`).
//!
//! The loop ([`sync`]) owns the pod's actual state and waits for
//! [`Input`]s: a run's process exited (each run has a waiter thread that
//! only waits and reports), a stop was requested, a timer fired. For each it
//! updates the state, computes what to do with the pure
//! [`actions::compute_actions`] (start the next container, restart one
//! after its back-off, kill what runs when stopping, finish what will not
//! run again), does it, and records the result on the containers (their
//! status, kubelet's events). What the steps do to the machine is behind
//! [`Runtime`]: the pod implements it, tests script it.

pub mod actions;
pub mod input;
pub mod sync;

use podvm_proto::RestartPolicy;

use crate::container::state::RunExit;
use crate::container::{Container, RunningInfo};
pub use actions::StopSignal;
pub use input::Input;
pub use sync::SyncLoop;

/// What the loop's steps do outside the containers' records: CRI's create
/// and start of one run, and signals.
pub trait Runtime {
    /// A run that was created and not yet started.
    type Created;
    /// A run whose process was started.
    type Run: Run + Send + 'static;
    /// Creates a run (CRI CreateContainer); the error is the message of
    /// `CreateContainerError`.
    fn create(&self, container: &Container) -> Result<Self::Created, String>;
    /// Starts run number `run` (CRI StartContainer); the error is the
    /// message of the `StartError` termination.
    fn start(
        &self,
        container: &Container,
        created: Self::Created,
        run: u32,
    ) -> Result<Self::Run, String>;
    /// Sends `signal` to the container's running process.
    fn signal(&self, container: &Container, signal: StopSignal);
}

/// A started run.
pub trait Run {
    /// How to reach it.
    fn info(&self) -> RunningInfo;
    /// When its process started (RFC 3339, UTC).
    fn started_at(&self) -> String;
    /// Waits for it to end, with all its output logged (on the run's
    /// waiter thread).
    fn wait(self) -> RunExit;
}

/// What the loop follows of the pod's spec.
#[derive(Debug, Clone)]
pub struct PodPolicy {
    pub restart: RestartPolicy,
    /// kubelet's description of the pod (`events::kubelet::pod_desc`).
    pub pod: String,
}
