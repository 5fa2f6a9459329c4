//! The API between the `podvm` host and `podvm-agent` (guest PID 1).
//!
//! It is ttrpc (containerd's RPC over a byte stream, the convention of
//! kata-agent and of containerd shims) carrying protobuf messages defined in
//! `protos/agent.proto`; the code is generated at build time. [`pb`] is the
//! wire form; [`spec`], [`status`], [`event`] and [`container`] are the
//! typed forms both sides program against, and [`convert`] maps between
//! them, checking every field of what comes off the wire. [`version`] is
//! the exchange a client does first on each connection.

pub mod client;
pub mod container;
pub mod convert;
pub mod event;
mod generated;
pub mod lifecycle;
pub mod limits;
pub mod spec;
pub mod status;
pub mod version;
pub mod volume;

/// The protobuf messages (`pb::agent`) and ttrpc services (`pb::agent_ttrpc`).
pub use generated::current as pb;
#[doc(hidden)]
pub use generated::v2_0 as pb_v2_0;

pub use client::{AgentConn, AgentVersion, ClientError, EventBatch, LogChunk, OutputStream};
pub use container::{ContainerLog, ContainerStats, CreateContainer};
pub use convert::ConvertError;
pub use event::{Event, EventType};
pub use lifecycle::{
    HookAction, HttpGet, HttpScheme, Lifecycle, Probe, ProbeAction, TerminationMessagePolicy,
};
pub use spec::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};
pub use status::{
    ContainerState, ContainerStatus, PodCondition, PodConditionType, PodPhase, SandboxStatus,
};
/// The status codes of error answers (gRPC's).
pub use ttrpc::Code;
pub use version::{Compatibility, PROTOCOL_MAJOR, PROTOCOL_MINOR};
pub use volume::{EmptyDirMedium, Volume, VolumeMount};

/// The AF_VSOCK port the agent listens on inside the guest.
pub const AGENT_VSOCK_PORT: u32 = 1024;
