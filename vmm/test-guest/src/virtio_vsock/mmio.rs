//! The vsock device's virtio-mmio register window: register access,
//! queue notification and queue setup.

use super::mem::{barrier, read, write};
use super::virtq::Virtq;
use crate::virtio_mmio::*;

/// The device's register window.
#[derive(Clone, Copy)]
pub struct Mmio(pub u64);

impl Mmio {
    pub fn set(self, offset: u64, value: u32) {
        write(self.0 + offset, value);
    }

    pub fn get(self, offset: u64) -> u32 {
        read(self.0 + offset)
    }

    pub fn notify(self, queue: u32) {
        barrier();
        self.set(QUEUE_NOTIFY, queue);
    }

    /// Queue setup (virtio 1.2, 4.2.3.2).
    pub fn setup_queue(self, q: &Virtq) -> Result<(), &'static str> {
        self.set(QUEUE_SEL, q.index);
        if self.get(QUEUE_NUM_MAX) < u32::from(q.size) {
            return Err("queue too small");
        }
        self.set(QUEUE_NUM, u32::from(q.size));
        for (low, high, addr) in [
            (QUEUE_DESC_LOW, QUEUE_DESC_HIGH, q.desc),
            (QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH, q.avail),
            (QUEUE_USED_LOW, QUEUE_USED_HIGH, q.used),
        ] {
            self.set(low, addr as u32);
            self.set(high, (addr >> 32) as u32);
        }
        self.set(QUEUE_READY, 1);
        Ok(())
    }
}
