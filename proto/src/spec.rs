//! The sandbox specification the host hands to the agent.
//!
//! It is the Kubernetes Pod spec reduced to what the guest needs, with the
//! image metadata resolved by the host. Kubernetes semantics that depend on
//! the image (command/args vs ENTRYPOINT/CMD, env, workingDir, user) are
//! applied by the agent, which has the image's root filesystem at hand.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    pub containers: Vec<ContainerSpec>,
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
