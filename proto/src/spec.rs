//! The sandbox specification the host hands to the agent.
//!
//! It is the Kubernetes Pod spec reduced to what the guest needs, with the
//! image metadata resolved by the host. Kubernetes semantics that depend on
//! the image (command/args vs ENTRYPOINT/CMD, env, workingDir, user) are
//! applied by the agent, which has the image's root filesystem at hand.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{Lifecycle, Probe, TerminationMessagePolicy};
use crate::volume::{Volume, VolumeMount};

/// A pod sandbox: shared namespaces plus its containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The pod's hostname (Kubernetes: `spec.hostname`, else the pod name).
    pub hostname: String,
    /// Extra `/etc/hosts` entries (`spec.hostAliases`).
    #[serde(default)]
    pub host_aliases: Vec<HostAlias>,
    pub restart_policy: RestartPolicy,
    pub termination_grace_period_seconds: u64,
    /// `initContainers`, in spec order. One whose `restart_policy` is
    /// `Always` is a native sidecar.
    #[serde(default)]
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    /// `activeDeadlineSeconds`: counted from the sandbox's start; once
    /// over, the pod fails with reason `DeadlineExceeded`.
    #[serde(default)]
    pub active_deadline_seconds: Option<u64>,
    /// `volumes` (emptyDir only).
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// One `hostAliases` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

/// Kubernetes `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// One container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    /// The image reference as written in the manifest.
    pub image: String,
    /// The image's content digest (`sha256:…`).
    pub image_id: String,
    pub image_config: ImageConfig,
    pub rootfs: RootfsSource,
    /// Kubernetes `command` (empty: not set).
    #[serde(default)]
    pub command: Vec<String>,
    /// Kubernetes `args` (empty: not set).
    #[serde(default)]
    pub args: Vec<String>,
    /// Kubernetes `env`, values already resolved, in manifest order.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Kubernetes `workingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Effective `securityContext.runAsUser` (container, else pod).
    #[serde(default)]
    pub run_as_user: Option<u32>,
    /// Effective `securityContext.runAsGroup` (container, else pod).
    #[serde(default)]
    pub run_as_group: Option<u32>,
    /// Pod `securityContext.supplementalGroups`.
    #[serde(default)]
    pub supplemental_groups: Vec<u32>,
    /// The container-level `restartPolicy`: only `Always`, only on an init
    /// container, which makes it a native sidecar.
    #[serde(default)]
    pub restart_policy: Option<RestartPolicy>,
    #[serde(default)]
    pub startup_probe: Option<Probe>,
    #[serde(default)]
    pub liveness_probe: Option<Probe>,
    #[serde(default)]
    pub readiness_probe: Option<Probe>,
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// `terminationMessagePath` (default `/dev/termination-log`).
    #[serde(default = "default_termination_message_path")]
    pub termination_message_path: String,
    #[serde(default)]
    pub termination_message_policy: TerminationMessagePolicy,
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

fn default_termination_message_path() -> String {
    crate::lifecycle::DEFAULT_TERMINATION_MESSAGE_PATH.into()
}

impl ContainerSpec {
    /// A container of `image` (resolved to `image_id`, `image_config`,
    /// `rootfs`) with every Kubernetes field unset.
    pub fn new(
        name: impl Into<String>,
        image: impl Into<String>,
        image_id: impl Into<String>,
        image_config: ImageConfig,
        rootfs: RootfsSource,
    ) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            image_id: image_id.into(),
            image_config,
            rootfs,
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            run_as_user: None,
            run_as_group: None,
            supplemental_groups: Vec::new(),
            restart_policy: None,
            startup_probe: None,
            liveness_probe: None,
            readiness_probe: None,
            lifecycle: Lifecycle::default(),
            termination_message_path: default_termination_message_path(),
            termination_message_policy: TerminationMessagePolicy::default(),
            volume_mounts: Vec::new(),
        }
    }

    /// Whether this init container is a native sidecar.
    pub fn is_sidecar(&self) -> bool {
        self.restart_policy == Some(RestartPolicy::Always)
    }
}

/// The parts of an OCI image config that decide how a container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `KEY=value` strings.
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`.
    #[serde(default)]
    pub user: Option<String>,
    /// `StopSignal` (`SIGQUIT`, `QUIT` or a number); `None`: SIGTERM.
    #[serde(default)]
    pub stop_signal: Option<String>,
}

/// Where a container's read-only image root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootfsSource {
    /// A virtio-blk disk identified by its serial number, holding an EROFS
    /// image of the root filesystem (the microVM case).
    BlockSerial { serial: String, fstype: String },
    /// A directory holding the unpacked root filesystem (agent host mode).
    Directory { path: PathBuf },
}

/// A resolved environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}
