//! The events kubelet records about a container as it runs the pod, with
//! kubelet's reasons (`pkg/kubelet/events/event.go`) and messages
//! (`pkg/kubelet/kuberuntime/kuberuntime_container.go`,
//! `kuberuntime_manager.go`, `pkg/kubelet/images/image_manager.go`), so
//! `describe`-style output reads as it does on a node. Also kubelet's pod
//! description (`format.Pod`) and back-off message, which the container
//! status shows.

use std::time::Duration;

use podvm_proto::EventType;

use crate::controller::input::HookKind;
use crate::controller::state::KillReason;

/// One kind of container event, with what its message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEvent<'a> {
    /// The image is on the machine (always so here: the host delivered it
    /// with the pod). Recorded before every creation, as kubelet does.
    Pulled { image: &'a str },
    /// The container was created (CRI CreateContainer succeeded).
    Created,
    /// The container's process was started.
    Started,
    /// Creating or starting the container failed with `error`.
    Failed { error: &'a str },
    /// A restart waits out the back-off; `pod` is [`pod_desc`].
    BackOff { pod: &'a str },
    /// The running container is being killed, for `reason`.
    Killing { reason: KillReason },
    /// A lifecycle hook failed with `message`.
    HookFailed { hook: HookKind, message: &'a str },
}

impl ContainerEvent<'_> {
    pub fn event_type(&self) -> EventType {
        match self {
            ContainerEvent::Pulled { .. }
            | ContainerEvent::Created
            | ContainerEvent::Started
            | ContainerEvent::Killing { .. } => EventType::Normal,
            ContainerEvent::Failed { .. }
            | ContainerEvent::BackOff { .. }
            | ContainerEvent::HookFailed { .. } => EventType::Warning,
        }
    }

    /// kubelet's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ContainerEvent::Pulled { .. } => "Pulled",
            ContainerEvent::Created => "Created",
            ContainerEvent::Started => "Started",
            ContainerEvent::Failed { .. } => "Failed",
            ContainerEvent::BackOff { .. } => "BackOff",
            ContainerEvent::Killing { .. } => "Killing",
            ContainerEvent::HookFailed {
                hook: HookKind::PostStart,
                ..
            } => "FailedPostStartHook",
            ContainerEvent::HookFailed {
                hook: HookKind::PreStop,
                ..
            } => "FailedPreStopHook",
        }
    }

    /// kubelet's message about the container named `container`.
    pub fn message(&self, container: &str) -> String {
        match self {
            // Go's %q; Rust's Debug quoting agrees on image references.
            ContainerEvent::Pulled { image } => {
                format!("Container image {image:?} already present on machine")
            }
            ContainerEvent::Created => format!("Created container: {container}"),
            ContainerEvent::Started => format!("Started container {container}"),
            ContainerEvent::Failed { error } => format!("Error: {error}"),
            ContainerEvent::BackOff { pod } => {
                format!("Back-off restarting failed container {container} in pod {pod}")
            }
            ContainerEvent::Killing {
                reason: KillReason::PodStopping,
            } => format!("Stopping container {container}"),
            ContainerEvent::Killing {
                reason: KillReason::Unhealthy(probe),
            } => format!(
                "Container {container} failed {} probe, will be restarted",
                probe.lower()
            ),
            ContainerEvent::Killing {
                reason: KillReason::PostStartFailed,
            } => "FailedPostStartHook".into(),
            ContainerEvent::HookFailed { message, .. } => message.to_string(),
        }
    }
}

/// One kind of event about the pod as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodEvent<'a> {
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The pod is evicted (an emptyDir grew past its limit).
    Evicted { message: &'a str },
}

impl PodEvent<'_> {
    pub fn event_type(&self) -> EventType {
        EventType::Warning
    }

    /// kubelet's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            PodEvent::DeadlineExceeded => "DeadlineExceeded",
            PodEvent::Evicted { .. } => "Evicted",
        }
    }

    /// kubelet's message.
    pub fn message(&self) -> String {
        match self {
            PodEvent::DeadlineExceeded => DEADLINE_MESSAGE.into(),
            PodEvent::Evicted { message } => message.to_string(),
        }
    }
}

/// kubelet's message for a pod past its `activeDeadlineSeconds` (the
/// event's and the pod status's).
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// kubelet's `format.Pod`: `NAME_NAMESPACE(UID)`.
pub fn pod_desc(name: &str, namespace: &str, uid: &str) -> String {
    format!("{name}_{namespace}({uid})")
}

/// The `CrashLoopBackOff` waiting message:
/// `back-off 20s restarting failed container=NAME pod=POD`.
pub fn backoff_message(delay: Duration, container: &str, pod: &str) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={pod}",
        go_duration(delay)
    )
}

/// A whole-second duration as Go prints a `time.Duration`: `40s`, `1m20s`,
/// `5m0s`, `1h0m0s` (back-off delays are whole seconds).
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::input::ProbeKind;

    #[test]
    fn kubelet_texts() {
        let pod = pod_desc("web", "default", "1234-ab");
        assert_eq!(pod, "web_default(1234-ab)");
        let cases = [
            (
                ContainerEvent::Pulled {
                    image: "busybox:1.36",
                },
                EventType::Normal,
                "Pulled",
                "Container image \"busybox:1.36\" already present on machine",
            ),
            (
                ContainerEvent::Created,
                EventType::Normal,
                "Created",
                "Created container: app",
            ),
            (
                ContainerEvent::Started,
                EventType::Normal,
                "Started",
                "Started container app",
            ),
            (
                ContainerEvent::Failed {
                    error: "no such file",
                },
                EventType::Warning,
                "Failed",
                "Error: no such file",
            ),
            (
                ContainerEvent::BackOff { pod: &pod },
                EventType::Warning,
                "BackOff",
                "Back-off restarting failed container app in pod web_default(1234-ab)",
            ),
            (
                ContainerEvent::Killing {
                    reason: KillReason::PodStopping,
                },
                EventType::Normal,
                "Killing",
                "Stopping container app",
            ),
            (
                ContainerEvent::Killing {
                    reason: KillReason::Unhealthy(ProbeKind::Liveness),
                },
                EventType::Normal,
                "Killing",
                "Container app failed liveness probe, will be restarted",
            ),
            (
                ContainerEvent::HookFailed {
                    hook: HookKind::PostStart,
                    message: "boom",
                },
                EventType::Warning,
                "FailedPostStartHook",
                "boom",
            ),
            (
                ContainerEvent::HookFailed {
                    hook: HookKind::PreStop,
                    message: "boom",
                },
                EventType::Warning,
                "FailedPreStopHook",
                "boom",
            ),
        ];
        for (event, event_type, reason, message) in cases {
            assert_eq!(event.event_type(), event_type, "{event:?}");
            assert_eq!(event.reason(), reason);
            assert_eq!(event.message("app"), message);
        }
    }

    #[test]
    fn backoff_message_prints_go_durations() {
        let secs = |s| Duration::from_secs(s);
        assert_eq!(
            backoff_message(secs(10), "app", "p_ns(u)"),
            "back-off 10s restarting failed container=app pod=p_ns(u)"
        );
        let printed: Vec<String> = [0, 59, 80, 300, 3600, 3725]
            .into_iter()
            .map(|s| go_duration(secs(s)))
            .collect();
        assert_eq!(printed, ["0s", "59s", "1m20s", "5m0s", "1h0m0s", "1h2m5s"]);
    }
}
