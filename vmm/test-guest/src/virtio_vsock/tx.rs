//! The tx queue and its buffers: one 16 KiB buffer per descriptor (header
//! and payload), a bitmap of the free ones, and the rx buffers lent to
//! descriptors that echo a packet in place.

use super::conn::Conn;
use super::header::{Header, HEADER_LEN};
use super::layout::{BUF_SIZE, TX_BUFS, TX_SIZE};
use super::virtq::Virtq;

/// Largest payload per tx packet.
pub const TX_PAYLOAD: u32 = (BUF_SIZE - HEADER_LEN) as u32;

/// The tx queue and its buffers (descriptor `n` owns buffer `n`).
pub struct Tx {
    pub q: Virtq,
    /// Bit `n`: buffer `n` is free.
    pub free: u64,
    /// The rx buffer descriptor `n` sends from instead (echo without a
    /// copy), to give back to the rx queue once the device has read it.
    pub lent: [Option<u16>; TX_SIZE as usize],
}

impl Tx {
    pub fn slot(&mut self) -> Option<u16> {
        if self.free == 0 {
            return None;
        }
        let n = self.free.trailing_zeros();
        self.free &= !(1 << n);
        Some(n as u16)
    }

    pub fn payload(slot: u16) -> u64 {
        TX_BUFS + u64::from(slot) * BUF_SIZE + HEADER_LEN
    }

    /// Queues the packet in `slot` (its payload already at [`Tx::payload`]).
    pub fn send(&mut self, slot: u16, header: &Header) {
        self.send_from(slot, TX_BUFS + u64::from(slot) * BUF_SIZE, header);
    }

    /// Queues `header` and the payload after it at `at` as descriptor `slot`.
    pub fn send_from(&mut self, slot: u16, at: u64, header: &Header) {
        header.store(at);
        self.q.set_desc(slot, at, HEADER_LEN as u32 + header.len, 0);
        self.q.push(slot);
    }

    /// Queues a control packet (no payload) for `conn`; `false` if no
    /// buffer is free.
    pub fn control(&mut self, cid: u64, conn: &mut Conn, op: u16, flags: u32) -> bool {
        let Some(slot) = self.slot() else {
            return false;
        };
        let header = conn.header(cid, op, flags, 0);
        self.send(slot, &header);
        true
    }
}
