//! Just enough of the i8042 keyboard controller for a guest to reset the
//! machine: command 0xFE on port 0x64 pulses the CPU reset line, which is
//! what Linux's `reboot=k` does (arch/x86/kernel/reboot.c).

use crate::devices::BusDevice;
use crate::stop::{StopReason, StopSender};

/// Offset of the command/status register (port 0x64) from port 0x60.
pub const COMMAND_OFFSET: u64 = 4;
/// Command: pulse the CPU reset line.
pub const CMD_RESET_CPU: u8 = 0xfe;

/// The i8042: reads as an idle controller with no data, reset stops the VM.
pub struct I8042 {
    stop: StopSender,
}

impl I8042 {
    /// A controller that reports a reset through `stop`.
    pub fn new(stop: StopSender) -> Self {
        Self { stop }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // Status 0: output buffer empty, input buffer empty; data 0.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == COMMAND_OFFSET && data.first() == Some(&CMD_RESET_CPU) {
            log::info!("guest pulsed the i8042 reset line");
            self.stop.stop(StopReason::GuestReset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_stops_and_other_writes_do_not() {
        let (tx, rx) = StopSender::channel();
        let mut dev = I8042::new(tx);
        dev.write(0, &[CMD_RESET_CPU]);
        dev.write(COMMAND_OFFSET, &[0xad]);
        assert!(rx.try_recv().is_err());
        let mut status = [0xffu8];
        dev.read(COMMAND_OFFSET, &mut status);
        assert_eq!(status, [0]);
        dev.write(COMMAND_OFFSET, &[CMD_RESET_CPU]);
        assert_eq!(rx.try_recv().ok(), Some(StopReason::GuestReset));
    }
}
