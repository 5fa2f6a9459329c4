//! virtio devices: the [`VirtioDevice`] seam between a device model and its
//! transport, the virtio-mmio transport, and the devices.
//!
//! Constants mirror include/uapi/linux/virtio_config.h and virtio_ids.h.

pub mod blk;
pub mod device_status;
pub mod event_loop;
pub mod mmio;
pub mod rng;
#[cfg(test)]
pub mod test_driver;
pub mod vsock;

use std::os::fd::RawFd;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

/// `VIRTIO_F_VERSION_1`: the device follows virtio 1.x (modern).
pub const VIRTIO_F_VERSION_1: u32 = 32;
/// `VIRTIO_ID_BLOCK`.
pub const VIRTIO_ID_BLOCK: u32 = 2;
/// `VIRTIO_ID_RNG`.
pub const VIRTIO_ID_RNG: u32 = 4;
/// `VIRTIO_ID_VSOCK`.
pub const VIRTIO_ID_VSOCK: u32 = 19;

/// Errors a device reports when the guest broke the virtio contract so
/// badly that the device stops serving it until reset.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The used ring could not be written.
    #[error("cannot update the used ring: {0}")]
    UsedRing(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A virtio device model, driven by a transport.
///
/// The transport owns the queues and the feature negotiation; the device
/// turns available descriptor chains into used ones. Chains that break
/// the rules (wrong direction, outside memory, too long) are the device's
/// to drop: complete them with what was done and log, never panic.
pub trait VirtioDevice: Send {
    /// The virtio device ID (`VIRTIO_ID_*`).
    fn device_type(&self) -> u32;
    /// Feature bits the device offers.
    fn avail_features(&self) -> u64;
    /// Maximum size of each queue; the length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads device configuration space at `offset`.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes device configuration space at `offset`. None of our devices
    /// has a writable field, so by default the write is logged and ignored.
    fn write_config(&mut self, offset: u64, _data: &[u8]) {
        log::debug!(
            "virtio device {}: ignored config write at {offset:#x}",
            self.device_type()
        );
    }
    /// Handles available chains of queue `index` of `queues` (all the
    /// device's queues, so that a device can answer on another one);
    /// `Ok(true)` when a used ring changed and the driver should be
    /// interrupted. `Err` marks the device broken until the driver resets it.
    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
    ) -> Result<bool>;
    /// File descriptors of the device's backend that the device event loop
    /// polls for input; fixed for the device's life.
    fn event_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// Handles readiness of `event_fds()[index]`. `queues` is empty while
    /// the driver has not finished setting the device up (or broke it): the
    /// device must still consume the readiness. Returns as `process_queue`.
    fn handle_event(
        &mut self,
        _index: usize,
        _queues: &mut [Queue],
        _mem: &GuestMemoryMmap,
    ) -> Result<bool> {
        Ok(false)
    }
    /// Returns to the state before the driver first touched the device.
    fn reset(&mut self);
}

/// Copies the part of a device's configuration space `config` that starts at
/// the driver-chosen `offset` into `data`; bytes past its end read as zero.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    data.fill(0);
    if let Some(src) = usize::try_from(offset).ok().and_then(|o| config.get(o..)) {
        let n = src.len().min(data.len());
        data[..n].copy_from_slice(&src[..n]);
    }
}

#[cfg(test)]
mod config_tests {
    use super::read_config_bytes;

    #[test]
    fn config_reads_are_bounded() {
        let cfg = [1u8, 2, 3, 4];
        let mut out = [9u8; 3];
        read_config_bytes(&cfg, 2, &mut out);
        assert_eq!(out, [3, 4, 0]);
        read_config_bytes(&cfg, 4, &mut out);
        assert_eq!(out, [0, 0, 0]);
        read_config_bytes(&cfg, u64::MAX, &mut out);
        assert_eq!(out, [0, 0, 0]);
    }
}
