//! A split virtqueue as the driver uses it: one buffer per descriptor, no
//! chaining, no interrupts; descriptors pushed to the avail ring and
//! published in batches, used elements popped in order.

use super::mem::{barrier, read, write};

/// Descriptor flag: device-writable; avail flag: no interrupts wanted
/// (include/uapi/linux/virtio_ring.h).
pub const F_WRITE: u16 = 2;
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// A split virtqueue: descriptors, avail and used rings on their own pages.
pub struct Virtq {
    pub index: u32,
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Next avail slot to fill, and the avail index the device has seen.
    next_avail: u16,
    published: u16,
    last_used: u16,
}

impl Virtq {
    pub const fn new(index: u32, size: u16, at: u64) -> Self {
        Self {
            index,
            size,
            desc: at,
            avail: at + 0x1000,
            used: at + 0x2000,
            next_avail: 0,
            published: 0,
            last_used: 0,
        }
    }

    /// Descriptor `id`: one buffer, no chaining.
    pub fn set_desc(&self, id: u16, addr: u64, len: u32, flags: u16) {
        let at = self.desc + u64::from(id) * 16;
        write(at, addr);
        write(at + 8, len);
        write(at + 12, flags);
        write(at + 14, 0u16);
    }

    /// Adds descriptor `id` to the avail ring, not yet visible to the device.
    pub fn push(&mut self, id: u16) {
        let slot = u64::from(self.next_avail & (self.size - 1));
        write(self.avail + 4 + slot * 2, id);
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    pub fn unpublished(&self) -> u16 {
        self.next_avail.wrapping_sub(self.published)
    }

    /// Makes the pushed descriptors visible.
    pub fn publish(&mut self) {
        barrier();
        write(self.avail + 2, self.next_avail);
        self.published = self.next_avail;
        barrier();
    }

    /// Whether the device used buffers not popped yet.
    #[inline(always)]
    pub fn has_used(&self) -> bool {
        read::<u16>(self.used + 2) != self.last_used
    }

    /// The next used element: (descriptor id, bytes written).
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        if !self.has_used() {
            return None;
        }
        barrier();
        let mask = self.size - 1;
        let elem = self.used + 4 + u64::from(self.last_used & mask) * 8;
        let id: u32 = read(elem);
        let len: u32 = read(elem + 4);
        self.last_used = self.last_used.wrapping_add(1);
        Some(((id & u32::from(mask)) as u16, len))
    }
}
