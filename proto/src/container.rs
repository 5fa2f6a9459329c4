//! The container-level API (since protocol 2.2), for a CRI-style client:
//! what `CreateContainer` takes and what `StatsContainer` answers. The
//! container itself is an OCI runtime spec, carried as its JSON.

use std::path::PathBuf;

use crate::spec::RootfsSource;

/// Where a container's output goes (as CRI log lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerLog {
    /// A file in the guest the agent appends to.
    File(PathBuf),
    /// Kept by the agent, read with `ReadLog` by container id.
    Agent,
}

/// `CreateContainer`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateContainer {
    pub container_id: String,
    /// The OCI runtime spec (`config.json`) as JSON.
    pub oci_spec: Vec<u8>,
    pub rootfs: RootfsSource,
    pub log: ContainerLog,
}

/// A container's usage, from its cgroup: `None` where its cgroup has no
/// such controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStats {
    /// CPU time of the container's processes, in nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    /// Memory charged to the container, in bytes.
    pub memory_usage_bytes: Option<u64>,
    /// Tasks in the container.
    pub pids: Option<u64>,
}
