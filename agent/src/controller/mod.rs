//! The pod controller: ONE sync loop per pod, in kubelet's model
//! (`kuberuntime_manager.go`: `computePodActions`, then `SyncPod`).
//!
//! The loop ([`sync`]) owns the pod's actual state ([`state`]) and waits
//! for [`Input`]s: a run's process exited (each run has a waiter thread
//! that only waits and reports), a hook ended (hooks run on threads of
//! their own), a probe changed its result (the pod's prober reports), a
//! stop was requested, a timer fired. For each it updates the state,
//! computes what to do with the pure [`actions::compute_actions`] (start
//! the next container in kubelet's order, restart one after its back-off,
//! kill an unhealthy one, stop the pod), does it, and records the result
//! on the containers (their status, kubelet's events). What the steps do
//! to the machine is behind [`Runtime`]: the pod implements it, tests
//! script it.

pub mod actions;
pub mod input;
pub mod phase;
pub mod state;
pub mod sync;

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use podvm_proto::{HookAction, RestartPolicy};

use crate::container::state::RunExit;
use crate::container::{Container, CreateFailure, RunningInfo};
pub use input::{Input, ProbeKind};
pub use state::{StopReason, StopSignal};
pub use sync::SyncLoop;

/// What the loop's steps do outside the containers' records: CRI's
/// create and start of one run, signals, hooks, probes and the volumes'
/// size check.
pub trait Runtime: Send + Sync + 'static {
    /// A run that was created and not yet started.
    type Created;
    /// A run whose process was started.
    type Run: Run + Send + 'static;
    /// Creates a run (CRI CreateContainer).
    fn create(&self, container: &Container) -> Result<Self::Created, CreateFailure>;
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
    /// Runs a lifecycle hook of the container's live run to its end, for at
    /// most `limit` (on a hook thread); the error is kubelet's message.
    fn run_hook(
        &self,
        container: &Container,
        action: &HookAction,
        limit: Option<Duration>,
    ) -> Result<(), String>;
    /// Starts the probes of run `run` of the container at `index`; their
    /// changes go to `inputs` as [`Input::ProbeResult`].
    fn watch_probes(
        &self,
        index: usize,
        container: &Arc<Container>,
        run: u32,
        inputs: Sender<Input>,
    );
    /// Stops the probes of run `run` of the container at `index`.
    fn forget_probes(&self, index: usize, run: u32);
    /// The message of a run that ended (`terminationMessagePath`, or the
    /// log's tail under `FallbackToLogsOnError`).
    fn termination_message(&self, container: &Container, exit: &RunExit) -> Option<String>;
    /// kubelet's eviction message if an emptyDir grew past its size
    /// limit.
    fn volume_over_limit(&self) -> Option<String>;
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
    /// `terminationGracePeriodSeconds`.
    pub grace: Duration,
    /// `activeDeadlineSeconds`, from the loop's start.
    pub active_deadline: Option<Duration>,
    /// How often the emptyDir volumes are compared with their size
    /// limits; `None` when none has one.
    pub volume_check: Option<Duration>,
}

/// What the loop publishes about the pod as a whole (the containers
/// publish their own records).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodOutcome {
    /// Why the pod stops, once it does.
    pub stop: Option<StopReason>,
    /// The message of a pod the agent failed (eviction).
    pub message: Option<String>,
    /// Nothing will run again.
    pub over: bool,
}

/// [`PodOutcome`] shared between the loop and status readers.
#[derive(Debug, Default)]
pub struct SharedOutcome(Mutex<PodOutcome>);

impl SharedOutcome {
    pub fn get(&self) -> PodOutcome {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut PodOutcome)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}
