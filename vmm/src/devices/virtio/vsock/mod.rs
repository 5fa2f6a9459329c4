//! virtio-vsock with Firecracker's hybrid Unix-socket backend: the guest
//! (CID 3 by default) talks stream sockets with the host (CID 2), whose
//! side is Unix sockets: host-initiated connections come in on a listening
//! socket with `CONNECT <port>\n`, guest-initiated ones go to
//! `<uds>_<port>`. Queues rx, tx and event; credit-based flow control.
//!
//! Constants mirror include/uapi/linux/virtio_vsock.h.

pub mod backend;
mod connection;
mod deadline;
mod device;
pub mod muxer;
pub mod packet;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use backend::{Backend, UnixBackend};
pub use device::Vsock;
pub use muxer::Muxer;

use crate::devices::virtio;

/// `VMADDR_CID_HOST` (include/uapi/linux/vm_sockets.h).
pub const HOST_CID: u64 = 2;
/// `VIRTIO_VSOCK_TYPE_STREAM`.
pub const VIRTIO_VSOCK_TYPE_STREAM: u16 = 1;
/// `VIRTIO_VSOCK_OP_REQUEST`: connect.
pub const VIRTIO_VSOCK_OP_REQUEST: u16 = 1;
/// `VIRTIO_VSOCK_OP_RESPONSE`: accept.
pub const VIRTIO_VSOCK_OP_RESPONSE: u16 = 2;
/// `VIRTIO_VSOCK_OP_RST`: abort / close.
pub const VIRTIO_VSOCK_OP_RST: u16 = 3;
/// `VIRTIO_VSOCK_OP_SHUTDOWN`: no more receiving and/or sending.
pub const VIRTIO_VSOCK_OP_SHUTDOWN: u16 = 4;
/// `VIRTIO_VSOCK_OP_RW`: data.
pub const VIRTIO_VSOCK_OP_RW: u16 = 5;
/// `VIRTIO_VSOCK_OP_CREDIT_UPDATE`.
pub const VIRTIO_VSOCK_OP_CREDIT_UPDATE: u16 = 6;
/// `VIRTIO_VSOCK_OP_CREDIT_REQUEST`.
pub const VIRTIO_VSOCK_OP_CREDIT_REQUEST: u16 = 7;
/// `VIRTIO_VSOCK_SHUTDOWN_RCV`.
pub const VIRTIO_VSOCK_SHUTDOWN_RCV: u32 = 1;
/// `VIRTIO_VSOCK_SHUTDOWN_SEND`.
pub const VIRTIO_VSOCK_SHUTDOWN_SEND: u32 = 2;
/// Both shutdown flags.
pub const VIRTIO_VSOCK_SHUTDOWN_MASK: u32 = 3;

/// Queue indexes.
pub const RX_QUEUE: usize = 0;
/// The guest's packets.
pub const TX_QUEUE: usize = 1;
/// Transport events (never sent: no live migration).
pub const EVENT_QUEUE: usize = 2;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;
/// Largest payload taken from or put into one packet.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Our receive buffer per connection (what the guest may have in flight).
pub const CONN_BUF_ALLOC: u32 = 256 * 1024;
/// Freed bytes that make us send the guest a CREDIT_UPDATE.
pub const CREDIT_UPDATE_THRESHOLD: u32 = CONN_BUF_ALLOC / 4;
/// Host ports given to host-initiated connections start here.
pub const FIRST_LOCAL_PORT: u32 = 1 << 30;
/// Time for a host client to send its CONNECT line and for the guest to
/// answer the REQUEST.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Time for the guest to RST a connection after we sent SHUTDOWN.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most host connections still sending their CONNECT line.
pub const MAX_HANDSHAKES: usize = 64;
/// Most connections at once, both directions and handshakes included (as
/// in Firecracker): each holds a host fd and up to [`CONN_BUF_ALLOC`] of
/// guest bytes the host has not read, so this bounds what a guest (or a
/// host client) can make the VMM hold. Beyond it a guest REQUEST gets RST
/// and a host connection is closed unanswered.
pub const MAX_CONNECTIONS: usize = 1024;
/// Longest CONNECT line accepted (without the newline).
pub const MAX_CONNECT_LINE: usize = 32;
/// Control packets waiting for rx buffers beyond which the guest's tx
/// queue is no longer read (so a guest that never reads cannot make the
/// VMM queue replies without bound).
pub const MAX_BACKLOG: usize = 1024;

/// Errors of the vsock device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be created.
    #[error("cannot listen on {path}: {source}")]
    Bind {
        /// The socket path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The guest sent (or gave room for) a malformed packet.
    #[error("bad packet: {0}")]
    BadPacket(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;
