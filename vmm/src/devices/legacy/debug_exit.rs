//! A debug-exit port: the guest writes a status and the VM stops with it.
//!
//! Modelled on QEMU's `isa-debug-exit`; test guests use it to report
//! success (0) or a failure code without needing a reset path.

use crate::devices::BusDevice;
use crate::stop::{StopReason, StopSender};

/// The debug-exit port device.
pub struct DebugExit {
    stop: StopSender,
}

impl DebugExit {
    /// A port that reports the written status through `stop`.
    pub fn new(stop: StopSender) -> Self {
        Self { stop }
    }
}

impl BusDevice for DebugExit {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0xff);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) {
        let mut bytes = [0u8; 4];
        let n = data.len().min(4);
        bytes[..n].copy_from_slice(&data[..n]);
        let status = u32::from_le_bytes(bytes);
        log::info!("guest wrote {status:#x} to the debug-exit port");
        self.stop.stop(StopReason::GuestExit(status));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_status_is_reported() {
        let (tx, rx) = StopSender::channel();
        let mut dev = DebugExit::new(tx);
        dev.write(0, &[7]);
        assert_eq!(rx.try_recv().ok(), Some(StopReason::GuestExit(7)));
        dev.write(0, &[1, 2, 0, 0, 9, 9]);
        assert_eq!(rx.try_recv().ok(), Some(StopReason::GuestExit(0x201)));
    }
}
