//! The vsock packet header, `struct virtio_vsock_hdr`, read from and
//! written to the rx and tx buffers, and the values of its fields the
//! driver uses.

use super::mem::{read, write};

/// include/uapi/linux/virtio_vsock.h and vm_sockets.h.
pub const HOST_CID: u64 = 2;
pub const HEADER_LEN: u64 = 44;
pub const TYPE_STREAM: u16 = 1;
pub const OP_REQUEST: u16 = 1;
pub const OP_RESPONSE: u16 = 2;
pub const OP_RST: u16 = 3;
pub const OP_SHUTDOWN: u16 = 4;
pub const OP_RW: u16 = 5;
pub const OP_CREDIT_UPDATE: u16 = 6;
pub const OP_CREDIT_REQUEST: u16 = 7;
pub const SHUTDOWN_RCV: u32 = 1;
pub const SHUTDOWN_SEND: u32 = 2;
pub const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

/// `struct virtio_vsock_hdr` (44 bytes, little-endian, packed; every
/// buffer here starts 16 KiB-aligned, so each field is naturally aligned).
#[derive(Clone, Copy, Debug, Default)]
pub struct Header {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub kind: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

impl Header {
    pub fn load(at: u64) -> Self {
        Self {
            src_cid: read(at),
            dst_cid: read(at + 8),
            src_port: read(at + 16),
            dst_port: read(at + 20),
            len: read(at + 24),
            kind: read(at + 28),
            op: read(at + 30),
            flags: read(at + 32),
            buf_alloc: read(at + 36),
            fwd_cnt: read(at + 40),
        }
    }

    // `#[inline]`: for every packet sent, from `tx.rs` (another codegen
    // unit).
    #[inline]
    pub fn store(&self, at: u64) {
        write(at, self.src_cid);
        write(at + 8, self.dst_cid);
        write(at + 16, self.src_port);
        write(at + 20, self.dst_port);
        write(at + 24, self.len);
        write(at + 28, self.kind);
        write(at + 30, self.op);
        write(at + 32, self.flags);
        write(at + 36, self.buf_alloc);
        write(at + 40, self.fwd_cnt);
    }
}
