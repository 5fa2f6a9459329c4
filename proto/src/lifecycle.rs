//! What a container's probes and lifecycle hooks do, as the host hands them
//! to the agent: Kubernetes' `Probe` and `LifecycleHandler` with defaults
//! applied and named ports resolved to numbers (the host has the
//! container's `ports`).

use serde::{Deserialize, Serialize};

/// `scheme` of an `httpGet` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum HttpScheme {
    #[default]
    Http,
    /// TLS without certificate verification, as kubelet does.
    Https,
}

/// An `httpGet` action: a GET to `scheme://host:port/path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpGet {
    /// `host`; `None` means the pod's own address (the agent uses the
    /// loopback of the pod's network namespace).
    #[serde(default)]
    pub host: Option<String>,
    pub port: u16,
    /// Always starts with `/`.
    pub path: String,
    pub scheme: HttpScheme,
    /// `httpHeaders`, in manifest order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeAction {
    /// Runs `command` in the container; exit 0 is success.
    Exec { command: Vec<String> },
    /// 200–399 is success.
    HttpGet(HttpGet),
    /// A TCP connection that opens is success.
    TcpSocket {
        #[serde(default)]
        host: Option<String>,
        port: u16,
    },
    /// `grpc.health.v1.Health/Check` answering `SERVING` is success.
    Grpc {
        port: u16,
        #[serde(default)]
        service: Option<String>,
    },
}

/// A probe with Kubernetes' defaults applied (periods in seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub action: ProbeAction,
    /// Default 0.
    pub initial_delay_seconds: u32,
    /// Default 10, minimum 1.
    pub period_seconds: u32,
    /// Default 1, minimum 1.
    pub timeout_seconds: u32,
    /// Default 1; must be 1 for liveness and startup probes.
    pub success_threshold: u32,
    /// Default 3, minimum 1.
    pub failure_threshold: u32,
    /// Probe-level `terminationGracePeriodSeconds`: the grace period of a
    /// kill this probe causes (liveness and startup only).
    #[serde(default)]
    pub termination_grace_period_seconds: Option<u64>,
}

impl Probe {
    /// A probe doing `action` with every setting at Kubernetes' default.
    pub fn with_defaults(action: ProbeAction) -> Self {
        Probe {
            action,
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            success_threshold: 1,
            failure_threshold: 3,
            termination_grace_period_seconds: None,
        }
    }
}

/// What a lifecycle hook (`postStart`, `preStop`) does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAction {
    /// Runs `command` in the container; exit 0 is success.
    Exec { command: Vec<String> },
    /// 200–399 is success.
    HttpGet(HttpGet),
    /// Sleeps that many seconds.
    Sleep { seconds: u64 },
}

/// A container's `lifecycle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Lifecycle {
    #[serde(default)]
    pub post_start: Option<HookAction>,
    #[serde(default)]
    pub pre_stop: Option<HookAction>,
}

/// `terminationMessagePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TerminationMessagePolicy {
    /// The message is the file at `terminationMessagePath` (default).
    #[default]
    File,
    /// As `File`; if that is empty and the container failed, the last
    /// lines of its log (2048 bytes or 80 lines at most, as kubelet).
    FallbackToLogsOnError,
}

/// Kubernetes' default `terminationMessagePath`.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
