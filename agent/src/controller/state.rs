//! The pod's actual state as the sync loop keeps it: per container its
//! role (init, sidecar, app), where it is ([`Phase`]), its restart back-off
//! and what its probes last said; for the pod, whether and why it is
//! stopping. [`compute_actions`](super::actions::compute_actions) reads
//! it; only the loop changes it.

use std::time::Instant;

use podvm_proto::RestartPolicy;

use super::input::ProbeKind;
use crate::backoff::Backoff;

/// A container's part in the pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// An init container: runs to completion, one at a time, before
    /// anything after it.
    Init,
    /// A native sidecar (init container with `restartPolicy: Always`):
    /// started in order, runs beside the app containers, stopped after
    /// them.
    Sidecar,
    /// An app container.
    #[default]
    App,
}

/// A signal the loop sends to stop a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopSignal {
    /// The polite one: the image's `STOPSIGNAL`, else SIGTERM.
    Term,
    /// The one that cannot be refused, once the grace period is over.
    Kill,
}

/// Why a running container is being killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// The pod is stopping (see [`StopReason`]).
    PodStopping,
    /// Its liveness or startup probe failed: the restart policy decides
    /// what follows.
    Unhealthy(ProbeKind),
    /// Its postStart hook failed.
    PostStartFailed,
}

/// How far a kill has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillStage {
    /// Its preStop hook runs.
    PreStop,
    /// preStop is over (or there is none); the stop signal waits for the
    /// container's turn (sidecars stop after the app containers, in
    /// reverse order).
    AwaitTurn,
    /// This signal was sent.
    Signalled(StopSignal),
}

/// Whether a kill ran out of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Overdue {
    /// Within its grace period.
    #[default]
    No,
    /// The grace period is over: SIGKILL, whatever the stage.
    Kill,
    /// Even SIGKILL did not end it in time: the loop stops waiting.
    GiveUp,
}

/// Where one container is. A run is one process of the container (a new
/// container, in Kubernetes' terms), numbered from 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Phase {
    /// Not started yet.
    #[default]
    Pending,
    /// Run `run`'s process is alive and its postStart hook runs: it is
    /// not `Running` yet, and the next container waits.
    PostStart { run: u32 },
    /// Run `run`'s process is alive.
    Running { run: u32 },
    /// Run `run`'s process is alive and being killed.
    Killing {
        run: u32,
        reason: KillReason,
        stage: KillStage,
        overdue: Overdue,
    },
    /// Run `run` ended with `exit_code`; what follows is not decided yet.
    Exited { run: u32, exit_code: i32 },
    /// Run `run` ended and the next one waits out the back-off.
    BackingOff { run: u32 },
    /// Run `run` ended and the next one is due.
    RestartDue { run: u32 },
    /// Run `run` could not be created; creating it is tried again after
    /// the back-off (kubelet retries `CreateContainerError` and
    /// `CreateContainerConfigError` on its next syncs).
    CreateFailed { run: u32 },
    /// The retry of run `run`'s creation is due.
    CreateRetryDue { run: u32 },
    /// It will not run again.
    Done,
}

impl Phase {
    /// Whether a process of the container is alive.
    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            Phase::PostStart { .. } | Phase::Running { .. } | Phase::Killing { .. }
        )
    }

    /// The run whose process is alive.
    pub fn live_run(&self) -> Option<u32> {
        match *self {
            Phase::PostStart { run } | Phase::Running { run } | Phase::Killing { run, .. } => {
                Some(run)
            }
            _ => None,
        }
    }
}

/// What the loop knows of a container's spec that decides its actions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traits {
    pub role: Role,
    pub has_startup_probe: bool,
    pub has_pre_stop: bool,
}

/// One container's part of the pod's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub traits: Traits,
    pub phase: Phase,
    /// Kept per container, as kubelet keys it.
    pub backoff: Backoff,
    /// The exit code of its last run, once one ended.
    pub last_exit: Option<i32>,
    /// The current run passed its postStart hook and its startup probe.
    pub started: bool,
    /// A run of it was ever started (a sidecar lets the next init
    /// container start once it has).
    pub ever_started: bool,
    /// Its live run is to be killed (a probe or its postStart failed).
    pub kill_requested: Option<KillReason>,
}

impl Slot {
    /// A container with these traits, not started yet.
    pub fn new(traits: Traits) -> Self {
        Slot {
            traits,
            ..Slot::default()
        }
    }

    /// An init container whose last run completed: it will not run again.
    pub fn completed_init(&self) -> bool {
        self.phase == Phase::Done && self.last_exit == Some(0)
    }
}

/// Why the pod stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The host asked (`StopSandbox`: the pod is being deleted).
    Requested,
    /// Every app container ended for good: the sidecars are stopped.
    Completed,
    /// An init container failed under `restartPolicy: Never`.
    InitFailed,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// An emptyDir grew past its `sizeLimit`.
    Evicted,
}

/// A stop under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub reason: StopReason,
    /// SIGKILL at once, no preStop (`--grace-period 0 --force`).
    pub force: bool,
}

/// What [`compute_actions`](super::actions::compute_actions) looks at:
/// the pod's desired state (restart policy, stop) and its containers'
/// actual state, init containers first, then app containers, each in spec
/// order, at `now`.
#[derive(Debug, Clone)]
pub struct PodState {
    pub now: Instant,
    pub restart: RestartPolicy,
    /// `None` while the pod runs.
    pub stop: Option<Stop>,
    pub containers: Vec<Slot>,
}

impl PodState {
    /// A pod whose containers (with these traits) were not started yet.
    pub fn new(restart: RestartPolicy, traits: &[Traits], now: Instant) -> Self {
        PodState {
            now,
            restart,
            stop: None,
            containers: traits.iter().copied().map(Slot::new).collect(),
        }
    }

    /// The pod stopped and none of its containers will run again: the
    /// loop has nothing left to do.
    pub fn is_over(&self) -> bool {
        self.stop.is_some() && self.containers.iter().all(|c| c.phase == Phase::Done)
    }

    /// Every init container completed and every sidecar started once: the
    /// app containers may start (`Initialized`).
    pub fn is_initialized(&self) -> bool {
        self.containers.iter().all(|c| match c.traits.role {
            Role::Init => c.completed_init(),
            Role::Sidecar => c.ever_started,
            Role::App => true,
        })
    }
}
