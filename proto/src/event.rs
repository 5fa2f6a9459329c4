//! Kubernetes-style events the agent records as the pod's lifecycle runs
//! (core/v1 Event: type, reason, message, the container it is about, first
//! and last time, count), numbered so a watcher can ask for what is new.

use serde::{Deserialize, Serialize};

/// `Normal` or `Warning`, as Kubernetes has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One event. Repeats of the same (type, reason, message, container) are
/// folded into one, with `count` and `last_timestamp` moved on and a new
/// `seq` (so a watcher sees the update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub event_type: EventType,
    pub reason: String,
    pub message: String,
    /// `None` when the event is about the pod itself.
    pub container: Option<String>,
    /// RFC 3339, UTC.
    pub first_timestamp: String,
    pub last_timestamp: String,
    pub count: u32,
}
