//! virtio-vsock packets: the 44-byte little-endian `struct
//! virtio_vsock_hdr` (include/uapi/linux/virtio_vsock.h), read from a tx
//! chain with its payload, or written into an rx chain.

use std::io::{Read, Write};

use virtio_queue::DescriptorChain;
use vm_memory::GuestMemoryMmap;

use super::{Error, Result, MAX_PAYLOAD};

/// Size of `struct virtio_vsock_hdr` (packed).
pub const HEADER_LEN: usize = 44;

/// `struct virtio_vsock_hdr`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

fn le<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

impl Header {
    /// Decodes the wire format.
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Self {
        Self {
            src_cid: u64::from_le_bytes(le(b, 0)),
            dst_cid: u64::from_le_bytes(le(b, 8)),
            src_port: u32::from_le_bytes(le(b, 16)),
            dst_port: u32::from_le_bytes(le(b, 20)),
            len: u32::from_le_bytes(le(b, 24)),
            kind: u16::from_le_bytes(le(b, 28)),
            op: u16::from_le_bytes(le(b, 30)),
            flags: u32::from_le_bytes(le(b, 32)),
            buf_alloc: u32::from_le_bytes(le(b, 36)),
            fwd_cnt: u32::from_le_bytes(le(b, 40)),
        }
    }

    /// Encodes the wire format.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.kind.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }
}

/// A packet the guest sent: header and payload.
#[derive(Debug)]
pub struct TxPacket {
    pub header: Header,
    pub payload: Vec<u8>,
}

/// Reads a packet from a tx chain. The payload is the `len` bytes after the
/// header, at most [`MAX_PAYLOAD`]; a chain shorter than it says, outside
/// memory, or with a larger `len` is refused.
pub fn read_tx(
    chain: DescriptorChain<&GuestMemoryMmap>,
    mem: &GuestMemoryMmap,
) -> Result<TxPacket> {
    let mut reader = chain
        .reader(mem)
        .map_err(|e| Error::BadPacket(format!("unreadable chain: {e}")))?;
    let mut raw = [0u8; HEADER_LEN];
    reader
        .read_exact(&mut raw)
        .map_err(|_| Error::BadPacket("short header".into()))?;
    let header = Header::from_bytes(&raw);
    let len = header.len as usize;
    if len > MAX_PAYLOAD || len > reader.available_bytes() {
        return Err(Error::BadPacket(format!("payload length {len}")));
    }
    let mut payload = vec![0u8; len];
    reader
        .read_exact(&mut payload)
        .map_err(|_| Error::BadPacket("short payload".into()))?;
    Ok(TxPacket { header, payload })
}

/// Room for payload in an rx chain, or `None` if the chain cannot take a
/// header (too small, read-only or outside memory).
pub fn rx_room(chain: &DescriptorChain<&GuestMemoryMmap>, mem: &GuestMemoryMmap) -> Option<usize> {
    let writer = chain.clone().writer(mem).ok()?;
    writer
        .available_bytes()
        .checked_sub(HEADER_LEN)
        .map(|room| room.min(MAX_PAYLOAD))
}

/// Writes `header` (its `len` set to the payload's) and `payload` into an
/// rx chain; returns the bytes written.
pub fn write_rx(
    chain: DescriptorChain<&GuestMemoryMmap>,
    mem: &GuestMemoryMmap,
    mut header: Header,
    payload: &[u8],
) -> Result<u32> {
    let mut writer = chain
        .writer(mem)
        .map_err(|e| Error::BadPacket(format!("unwritable rx chain: {e}")))?;
    if writer.available_bytes() < HEADER_LEN + payload.len() {
        return Err(Error::BadPacket("rx chain too small".into()));
    }
    header.len = payload.len() as u32;
    writer
        .write_all(&header.to_bytes())
        .and_then(|()| writer.write_all(payload))
        .map_err(|e| Error::BadPacket(format!("rx write: {e}")))?;
    Ok((HEADER_LEN + payload.len()) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_in_wire_order() {
        let header = Header {
            src_cid: 3,
            dst_cid: 2,
            src_port: 1024,
            dst_port: 0x4000_0001,
            len: 5,
            kind: 1,
            op: 5,
            flags: 3,
            buf_alloc: 1 << 18,
            fwd_cnt: 77,
        };
        let bytes = header.to_bytes();
        assert_eq!(&bytes[..8], &3u64.to_le_bytes());
        assert_eq!(&bytes[30..32], &5u16.to_le_bytes());
        assert_eq!(Header::from_bytes(&bytes), header);
    }
}
