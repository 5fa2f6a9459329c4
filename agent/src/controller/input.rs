//! What moves the pod sync loop: the events it waits for, each naming the
//! container it is about by its index (init containers first, then app
//! containers, in spec order) and, where it matters, the run it is about
//! (an input about an earlier run is stale and ignored).

use std::time::Duration;

use crate::container::state::RunExit;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// As kubelet names it in the middle of a sentence.
    pub fn lower(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        }
    }
}

/// Which lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    PostStart,
    PreStop,
}

/// One input of the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Run `run` of a container ended (sent by the run's waiter thread
    /// once all its output is in the log).
    ContainerExited {
        container: usize,
        run: u32,
        exit: RunExit,
    },
    /// Stop the pod: preStop, the stop signal, `grace`, SIGKILL; nothing
    /// starts any more. `force`: SIGKILL at once.
    StopRequested { grace: Duration, force: bool },
    /// A container's restart back-off is over (the loop's timer).
    BackOffExpired { container: usize },
    /// The wait before trying again to create a container is over (the
    /// loop's timer).
    CreateRetryExpired { container: usize },
    /// A hook of run `run` ended; `Err` carries kubelet's message.
    HookDone {
        container: usize,
        run: u32,
        hook: HookKind,
        result: Result<(), String>,
    },
    /// A probe of run `run` changed its result (after its thresholds).
    ProbeResult {
        container: usize,
        run: u32,
        probe: ProbeKind,
        success: bool,
    },
    /// The grace period of the kill of run `run` is over (the loop's
    /// timer): SIGKILL.
    KillDeadline { container: usize, run: u32 },
    /// Run `run` had its time to die after SIGKILL (the loop's timer).
    KillWaitExpired { container: usize, run: u32 },
    /// `activeDeadlineSeconds` passed (the loop's timer).
    ActiveDeadline,
    /// Time to compare the emptyDir volumes with their size limits (the
    /// loop's timer).
    CheckVolumes,
}
