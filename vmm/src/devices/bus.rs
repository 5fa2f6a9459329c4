//! An address bus (port I/O or MMIO): non-overlapping ranges, each routed
//! to a device that sees offsets relative to its base.

use std::sync::{Arc, Mutex};

/// A device on a [`Bus`].
pub trait BusDevice: Send {
    /// The guest reads `data.len()` bytes at `offset` into the device's range.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// The guest writes `data` at `offset` into the device's range.
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Errors while assembling a bus.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A range is empty or overlaps one already on the bus.
    #[error("bus range {base:#x}+{len:#x} is empty or overlaps another device")]
    Overlap {
        /// Base of the rejected range.
        base: u64,
        /// Length of the rejected range.
        len: u64,
    },
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A device shared between the bus and its owner.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// One device's range.
struct Slot {
    base: u64,
    len: u64,
    device: SharedDevice,
}

/// Ranges sorted by base; built once, then shared read-only by vCPUs.
#[derive(Default)]
pub struct Bus {
    slots: Vec<Slot>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `[base, base + len)` to `device`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<()> {
        let end = base.checked_add(len).filter(|_| len > 0);
        let Some(end) = end else {
            return Err(Error::Overlap { base, len });
        };
        if self
            .slots
            .iter()
            .any(|s| base < s.base + s.len && s.base < end)
        {
            return Err(Error::Overlap { base, len });
        }
        let at = self.slots.partition_point(|s| s.base < base);
        self.slots.insert(at, Slot { base, len, device });
        Ok(())
    }

    /// The device holding `addr` and the offset of `addr` in its range.
    fn find(&self, addr: u64) -> Option<(&SharedDevice, u64)> {
        let at = self.slots.partition_point(|s| s.base <= addr);
        let slot = self.slots.get(at.checked_sub(1)?)?;
        (addr - slot.base < slot.len).then(|| (&slot.device, addr - slot.base))
    }

    /// Reads from the device at `addr`; `false` if no device is there.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        match self.find(addr) {
            Some((device, offset)) => {
                lock(device).read(offset, data);
                true
            }
            None => false,
        }
    }

    /// Writes to the device at `addr`; `false` if no device is there.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        match self.find(addr) {
            Some((device, offset)) => {
                lock(device).write(offset, data);
                true
            }
            None => false,
        }
    }
}

/// Locks a device; a device whose lock holder panicked is still used (its
/// state is plain registers, and the panic was already reported).
fn lock(device: &SharedDevice) -> std::sync::MutexGuard<'_, dyn BusDevice + 'static> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder {
        writes: Vec<(u64, Vec<u8>)>,
    }

    impl BusDevice for Recorder {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.writes.push((offset, data.to_vec()));
        }
    }

    #[test]
    fn routes_by_range_with_relative_offsets() -> Result<()> {
        let a = Arc::new(Mutex::new(Recorder::default()));
        let b = Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(0x3f8, 8, a.clone())?;
        bus.insert(0x60, 5, b.clone())?;
        let mut byte = [0u8; 1];
        assert!(bus.read(0x3fd, &mut byte));
        assert_eq!(byte, [5]);
        assert!(bus.write(0x64, &[0xfe]));
        assert!(!bus.write(0x400, &[1]));
        assert!(!bus.read(0x5f, &mut byte));
        assert!(!bus.read(0x65, &mut byte));
        let b = b.lock().map_err(|_| Error::Overlap { base: 0, len: 0 })?;
        assert_eq!(b.writes, vec![(4, vec![0xfe])]);
        Ok(())
    }

    #[test]
    fn overlapping_or_empty_ranges_are_refused() -> Result<()> {
        let dev = || Arc::new(Mutex::new(Recorder::default()));
        let mut bus = Bus::new();
        bus.insert(0x100, 0x10, dev())?;
        assert!(bus.insert(0x10f, 1, dev()).is_err());
        assert!(bus.insert(0xf8, 9, dev()).is_err());
        assert!(bus.insert(0x200, 0, dev()).is_err());
        assert!(bus.insert(u64::MAX, 2, dev()).is_err());
        bus.insert(0x110, 1, dev())?;
        bus.insert(0xf0, 0x10, dev())?;
        Ok(())
    }
}
