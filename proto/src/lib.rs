//! The protocol spoken between the `podvm` host and `podvm-agent` (guest PID 1).
//!
//! Every message travels in one length-prefixed, versioned frame ([`frame`]);
//! the payload is a JSON-encoded [`Request`] (host → agent) or [`Response`]
//! (agent → host). One connection carries one request; streaming replies
//! (logs, exec output) are several response frames ended by [`Response::End`]
//! or [`Response::ExecExit`].

pub mod frame;
pub mod message;
pub mod spec;
pub mod status;

pub use frame::{read_message, write_message, FrameError, MAX_PAYLOAD, PROTOCOL_VERSION};
pub use message::{ErrorCode, Request, Response, StdStream};
pub use spec::{
    ContainerSpec, EnvVar, HostAlias, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec,
};
pub use status::{ContainerState, ContainerStatus, SandboxStatus};

/// The AF_VSOCK port the agent listens on inside the guest.
pub const AGENT_VSOCK_PORT: u32 = 1024;
