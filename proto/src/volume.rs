//! The pod's volumes and where containers mount them. Only `emptyDir` is
//! implemented: scratch space that lives as long as the pod.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where an `emptyDir`'s files live in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyDirMedium {
    /// `medium: ""` in the microVM: a scratch virtio-blk disk with this
    /// serial, formatted by the agent, so that files do not take guest RAM.
    BlockSerial { serial: String },
    /// `medium: ""` in agent host mode (tests): a directory under the
    /// agent's run directory.
    Directory,
    /// `medium: Memory`: a tmpfs; its size is the `sizeLimit` (else the
    /// kernel's default for tmpfs).
    Memory,
}

/// One `volumes[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub medium: EmptyDirMedium,
    /// `sizeLimit` in bytes. For a disk emptyDir, growing past it evicts
    /// the pod (phase `Failed`, reason `Evicted`) as kubelet does.
    #[serde(default)]
    pub size_limit: Option<u64>,
}

/// One `volumeMounts[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The volume's `name`.
    pub name: String,
    /// Absolute path in the container.
    pub mount_path: PathBuf,
    #[serde(default)]
    pub read_only: bool,
    /// A relative path inside the volume (created if missing); empty: the
    /// volume's root.
    #[serde(default)]
    pub sub_path: Option<String>,
}
