//! What moves the pod sync loop: the events it waits for, each naming the
//! container it is about by its index in the spec.
//!
//! Extension point: probe results (`ProbeResult { container, probe,
//! result }`, from per-container probe workers) and lifecycle hook results
//! (`HookResult { container, hook, outcome }`) become variants here when
//! probes and hooks are wired; the loop applies them to the pod's state
//! like any other input, and `compute_actions` decides what they mean
//! (kill an unhealthy container, start the next one once postStart ended).

use std::time::Duration;

use crate::container::state::RunExit;

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
    /// Stop the pod: SIGTERM, `grace`, SIGKILL; nothing starts any more.
    StopRequested { grace: Duration },
    /// A container's restart back-off is over (the loop's timer).
    BackOffExpired { container: usize },
    /// The stop's grace period is over (the loop's timer).
    GracePeriodExpired,
    /// Containers had their time to die after SIGKILL (the loop's timer).
    KillWaitExpired,
}
