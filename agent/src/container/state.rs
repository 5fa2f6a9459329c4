//! A container's state in Kubernetes' terms, typed: waiting, running or
//! terminated, with kubelet's (and containerd's) reasons as enums. The
//! agent's logic only ever sees these; they become the API's
//! [`ContainerState`] (reasons as strings) when status is reported.
//!
//! Only the reasons the agent produces are here; kubelet has a few more
//! (for instance `ContainerCannotRun`, `ImagePullBackOff`), each to get a
//! variant when something produces it.

use podvm_proto::ContainerState;

/// Why a container is waiting (`state.waiting.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingReason {
    /// A run is being created and started.
    ContainerCreating,
    /// An app container waits for the init containers.
    PodInitializing,
    /// A restart waits out its back-off.
    CrashLoopBackOff,
    /// The last run could not be started and a restart follows (kubelet's
    /// reason until the back-off shows).
    RunContainerError,
    /// Creating the container failed (it is not retried).
    CreateContainerError,
    /// The container's configuration could not be made into a runtime
    /// spec (a volume mount that cannot be made; not retried).
    CreateContainerConfigError,
}

impl WaitingReason {
    /// kubelet's string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingReason::ContainerCreating => "ContainerCreating",
            WaitingReason::PodInitializing => "PodInitializing",
            WaitingReason::CrashLoopBackOff => "CrashLoopBackOff",
            WaitingReason::RunContainerError => "RunContainerError",
            WaitingReason::CreateContainerError => "CreateContainerError",
            WaitingReason::CreateContainerConfigError => "CreateContainerConfigError",
        }
    }
}

/// Why a run ended (`state.terminated.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminatedReason {
    /// Its process exited with code 0.
    Completed,
    /// Its process exited with another code or was killed.
    Error,
    /// Its process could not be started (containerd's reason).
    StartError,
    /// It was killed because the pod's `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The kernel's OOM killer ended it.
    OOMKilled,
}

impl TerminatedReason {
    /// The reason of a run whose process ended with `exit_code`.
    pub fn of_exit(exit_code: i32) -> Self {
        if exit_code == 0 {
            TerminatedReason::Completed
        } else {
            TerminatedReason::Error
        }
    }

    /// kubelet's string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminatedReason::Completed => "Completed",
            TerminatedReason::Error => "Error",
            TerminatedReason::StartError => "StartError",
            TerminatedReason::DeadlineExceeded => "DeadlineExceeded",
            TerminatedReason::OOMKilled => "OOMKilled",
        }
    }
}

/// How a run ended (`state.terminated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: TerminatedReason,
    pub message: Option<String>,
    /// When its process started; `None` if it never did.
    pub started_at: Option<String>,
    pub finished_at: String,
}

/// Kubernetes `ContainerState`: exactly one of waiting, running, terminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: WaitingReason,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

impl State {
    /// Waiting for `reason`, with no message.
    pub fn waiting(reason: WaitingReason) -> Self {
        State::Waiting {
            reason,
            message: None,
        }
    }

    /// Whether it is waiting for `reason`.
    pub fn is_waiting_for(&self, reason: WaitingReason) -> bool {
        matches!(self, State::Waiting { reason: r, .. } if *r == reason)
    }
}

impl From<&State> for ContainerState {
    fn from(state: &State) -> Self {
        match state {
            State::Waiting { reason, message } => ContainerState::Waiting {
                reason: reason.as_str().into(),
                message: message.clone(),
            },
            State::Running { started_at } => ContainerState::Running {
                started_at: started_at.clone(),
            },
            State::Terminated(t) => ContainerState::Terminated {
                exit_code: t.exit_code,
                signal: t.signal,
                reason: t.reason.as_str().into(),
                message: t.message.clone(),
                started_at: t.started_at.clone(),
                finished_at: t.finished_at.clone(),
            },
        }
    }
}

/// How a run's process ended, as its waiter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunExit {
    /// The exit code, 128+N when killed by signal N.
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed it.
    pub oom_killed: bool,
    /// When it ended (RFC 3339, UTC).
    pub finished_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_kubelets_strings() {
        let waiting = [
            (WaitingReason::ContainerCreating, "ContainerCreating"),
            (WaitingReason::CrashLoopBackOff, "CrashLoopBackOff"),
            (WaitingReason::CreateContainerError, "CreateContainerError"),
            (WaitingReason::PodInitializing, "PodInitializing"),
            (WaitingReason::RunContainerError, "RunContainerError"),
            (
                WaitingReason::CreateContainerConfigError,
                "CreateContainerConfigError",
            ),
        ];
        for (reason, text) in waiting {
            assert_eq!(reason.as_str(), text);
        }
        let terminated = [
            (TerminatedReason::Completed, "Completed"),
            (TerminatedReason::Error, "Error"),
            (TerminatedReason::StartError, "StartError"),
            (TerminatedReason::DeadlineExceeded, "DeadlineExceeded"),
            (TerminatedReason::OOMKilled, "OOMKilled"),
        ];
        for (reason, text) in terminated {
            assert_eq!(reason.as_str(), text);
        }
        assert_eq!(TerminatedReason::of_exit(0), TerminatedReason::Completed);
        assert_eq!(TerminatedReason::of_exit(1), TerminatedReason::Error);
        assert_eq!(TerminatedReason::of_exit(137), TerminatedReason::Error);
    }

    #[test]
    fn states_convert_field_by_field() {
        let waiting = State::Waiting {
            reason: WaitingReason::CrashLoopBackOff,
            message: Some("back-off 10s".into()),
        };
        assert_eq!(
            ContainerState::from(&waiting),
            ContainerState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some("back-off 10s".into()),
            }
        );
        assert!(waiting.is_waiting_for(WaitingReason::CrashLoopBackOff));
        assert!(!waiting.is_waiting_for(WaitingReason::ContainerCreating));
        assert_eq!(
            ContainerState::from(&State::Running {
                started_at: "2024-01-01T00:00:00Z".into()
            }),
            ContainerState::Running {
                started_at: "2024-01-01T00:00:00Z".into()
            }
        );
        let ended = State::Terminated(Terminated {
            exit_code: 128,
            signal: None,
            reason: TerminatedReason::StartError,
            message: Some("exec: not found".into()),
            started_at: None,
            finished_at: "2024-01-01T00:00:01Z".into(),
        });
        assert_eq!(
            ContainerState::from(&ended),
            ContainerState::Terminated {
                exit_code: 128,
                signal: None,
                reason: "StartError".into(),
                message: Some("exec: not found".into()),
                started_at: None,
                finished_at: "2024-01-01T00:00:01Z".into(),
            }
        );
    }
}
