//! The pod's status as the agent reports it: phase (kubelet's rules, see
//! `controller::phase`), the conditions the agent decides with the time
//! each last changed, and the reason and message of a pod the agent
//! failed.

use std::sync::{Mutex, PoisonError};

use podvm_proto::{ContainerState, ContainerStatus, PodCondition, PodConditionType, PodPhase};

use crate::controller::state::StopReason;
use crate::events::kubelet::DEADLINE_MESSAGE;
use crate::ids::now_rfc3339;

/// A condition's value: status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionValue {
    pub status: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

impl ConditionValue {
    fn true_() -> Self {
        ConditionValue {
            status: true,
            reason: None,
            message: None,
        }
    }

    fn false_(reason: &str, message: Option<String>) -> Self {
        ConditionValue {
            status: false,
            reason: Some(reason.into()),
            message,
        }
    }
}

/// Go's `%v` of a list of names: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// `Initialized`: every init container completed and every sidecar
/// started (kubelet's `GeneratePodInitializedCondition`).
pub fn initialized(init: &[(bool, &ContainerStatus)], phase: PodPhase) -> ConditionValue {
    if phase == PodPhase::Succeeded {
        return ConditionValue::false_("PodCompleted", None).with_status(true);
    }
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|(sidecar, s)| {
            if *sidecar {
                !s.started
                    && !matches!(s.state, ContainerState::Terminated { .. })
                    && s.last_state.is_none()
            } else {
                !matches!(s.state, ContainerState::Terminated { exit_code: 0, .. })
            }
        })
        .map(|(_, s)| s.name.as_str())
        .collect();
    if incomplete.is_empty() {
        ConditionValue::true_()
    } else {
        ConditionValue::false_(
            "ContainersNotInitialized",
            Some(format!(
                "containers with incomplete status: {}",
                go_list(&incomplete)
            )),
        )
    }
}

/// `ContainersReady`: every app container and every sidecar is ready
/// (kubelet's `GenerateContainersReadyCondition`).
pub fn containers_ready(
    sidecars: &[&ContainerStatus],
    apps: &[&ContainerStatus],
    phase: PodPhase,
) -> ConditionValue {
    let unready: Vec<&str> = sidecars
        .iter()
        .chain(apps)
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    if unready.is_empty() {
        return ConditionValue::true_();
    }
    if matches!(phase, PodPhase::Succeeded | PodPhase::Failed) {
        return ConditionValue::false_("PodCompleted", None);
    }
    ConditionValue::false_(
        "ContainersNotReady",
        Some(format!(
            "containers with unready status: {}",
            go_list(&unready)
        )),
    )
}

impl ConditionValue {
    fn with_status(mut self, status: bool) -> Self {
        self.status = status;
        self
    }
}

/// The reason and message of a pod the agent failed itself.
pub fn failure(stop: Option<StopReason>, message: Option<String>) -> Option<(String, String)> {
    match stop? {
        StopReason::DeadlineExceeded => Some(("DeadlineExceeded".into(), DEADLINE_MESSAGE.into())),
        StopReason::Evicted => Some(("Evicted".into(), message.unwrap_or_default())),
        StopReason::Requested | StopReason::Completed | StopReason::InitFailed => None,
    }
}

/// The conditions with the time each last changed: a value that differs
/// from the one last reported changes its `lastTransitionTime` to now.
/// The host asks for status whenever it changed, so "now" is when it
/// changed, to within a round trip.
#[derive(Debug, Default)]
pub struct ConditionTracker {
    last: Mutex<Vec<PodCondition>>,
}

impl ConditionTracker {
    /// The conditions for `values`, with their transition times.
    pub fn update(&self, values: &[(PodConditionType, ConditionValue)]) -> Vec<PodCondition> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_rfc3339();
        let next: Vec<PodCondition> = values
            .iter()
            .map(|(kind, value)| {
                let before = last.iter().find(|c| c.condition_type == *kind);
                let since = match before {
                    Some(b) if b.status == value.status => b.last_transition_time.clone(),
                    _ => now.clone(),
                };
                PodCondition {
                    condition_type: *kind,
                    status: value.status,
                    reason: value.reason.clone(),
                    message: value.message.clone(),
                    last_transition_time: since,
                }
            })
            .collect();
        *last = next.clone();
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(name: &str, state: ContainerState, ready: bool, started: bool) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            container_id: "id".into(),
            image: "busybox".into(),
            image_id: "sha256:x".into(),
            state,
            last_state: None,
            restart_count: 0,
            ready,
            started,
        }
    }

    fn done(code: i32) -> ContainerState {
        ContainerState::Terminated {
            exit_code: code,
            signal: None,
            reason: "Completed".into(),
            message: None,
            started_at: None,
            finished_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn up() -> ContainerState {
        ContainerState::Running {
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn initialized_names_the_incomplete() {
        let a = status("a", done(0), false, false);
        let b = status("b", up(), false, false);
        let side = status("side", up(), false, false);
        let value = initialized(
            &[(false, &a), (false, &b), (true, &side)],
            PodPhase::Pending,
        );
        assert!(!value.status);
        assert_eq!(value.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            value.message.as_deref(),
            Some("containers with incomplete status: [b side]")
        );
        let side_started = status("side", up(), false, true);
        let b_done = status("b", done(0), false, false);
        assert!(
            initialized(
                &[(false, &a), (false, &b_done), (true, &side_started)],
                PodPhase::Running
            )
            .status
        );
    }

    #[test]
    fn containers_ready_names_the_unready() {
        let web = status("web", up(), false, true);
        let side = status("side", up(), true, true);
        let value = containers_ready(&[&side], &[&web], PodPhase::Running);
        assert_eq!(
            value.message.as_deref(),
            Some("containers with unready status: [web]")
        );
        let completed = containers_ready(&[], &[&web], PodPhase::Succeeded);
        assert_eq!(completed.reason.as_deref(), Some("PodCompleted"));
        let ready = status("web", up(), true, true);
        assert!(containers_ready(&[&side], &[&ready], PodPhase::Running).status);
    }

    #[test]
    fn transitions_keep_their_time_until_the_status_changes() {
        let tracker = ConditionTracker::default();
        let first = tracker.update(&[(PodConditionType::Initialized, ConditionValue::true_())]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let same = tracker.update(&[(PodConditionType::Initialized, ConditionValue::true_())]);
        assert_eq!(first[0].last_transition_time, same[0].last_transition_time);
        let changed = tracker.update(&[(
            PodConditionType::Initialized,
            ConditionValue::false_("X", None),
        )]);
        assert_ne!(
            first[0].last_transition_time,
            changed[0].last_transition_time
        );
    }
}
