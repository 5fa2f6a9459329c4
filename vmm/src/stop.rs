//! Why a VM stopped, and the VMM's exit status for it.
//!
//! Devices and vCPU threads report a [`StopReason`] through a
//! [`StopSender`]; the first report stops the VM.

use std::fmt;
use std::sync::mpsc;

/// Exit status: the guest asked to stop and reported success.
pub const EXIT_GUEST_STOP: i32 = 0;
/// Exit status: the VMM failed (configuration, setup, I/O); set by `main`.
pub const EXIT_VMM_ERROR: i32 = 1;
/// Exit status: the guest crashed (triple fault, emulation failure, ...).
pub const EXIT_GUEST_CRASH: i32 = 2;
/// Exit status: the guest asked to stop and reported a failure through
/// the debug-exit port.
pub const EXIT_GUEST_FAILURE: i32 = 3;

/// Why the VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The guest reset the machine (i8042 reset line, or a KVM reset
    /// event): what `reboot` does in a podvm guest.
    GuestReset,
    /// The guest powered the machine off (KVM shutdown event).
    GuestPowerOff,
    /// The guest wrote a status to the debug-exit port.
    GuestExit(u32),
    /// The guest crashed or a vCPU could not go on.
    Crash {
        /// The vCPU that saw it.
        vcpu: u8,
        /// What happened.
        what: String,
    },
}

impl StopReason {
    /// Whether the guest asked for this stop (as opposed to crashing).
    pub fn guest_requested(&self) -> bool {
        !matches!(self, StopReason::Crash { .. })
    }

    /// The VMM's process exit status for this stop.
    pub fn exit_code(&self) -> i32 {
        match self {
            StopReason::GuestReset | StopReason::GuestPowerOff | StopReason::GuestExit(0) => {
                EXIT_GUEST_STOP
            }
            StopReason::GuestExit(_) => EXIT_GUEST_FAILURE,
            StopReason::Crash { .. } => EXIT_GUEST_CRASH,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::GuestReset => write!(f, "guest reset the machine"),
            StopReason::GuestPowerOff => write!(f, "guest powered off"),
            StopReason::GuestExit(code) => write!(f, "guest exited with status {code:#x}"),
            StopReason::Crash { vcpu, what } => write!(f, "guest crashed on vCPU {vcpu}: {what}"),
        }
    }
}

/// Reports a stop to whoever runs the VM. Cloned into devices and vCPUs.
#[derive(Debug, Clone)]
pub struct StopSender(mpsc::Sender<StopReason>);

impl StopSender {
    /// A sender and the receiver the VM's runner waits on.
    pub fn channel() -> (StopSender, mpsc::Receiver<StopReason>) {
        let (tx, rx) = mpsc::channel();
        (StopSender(tx), rx)
    }

    /// Reports `reason`; a runner that already stopped ignores it.
    pub fn stop(&self, reason: StopReason) {
        // The receiver is gone only once the VM has stopped for another reason.
        let _ = self.0.send(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_tell_requested_stops_from_crashes() {
        assert_eq!(StopReason::GuestReset.exit_code(), 0);
        assert_eq!(StopReason::GuestPowerOff.exit_code(), 0);
        assert_eq!(StopReason::GuestExit(0).exit_code(), 0);
        assert_eq!(StopReason::GuestExit(5).exit_code(), 3);
        let crash = StopReason::Crash {
            vcpu: 0,
            what: "triple fault".into(),
        };
        assert_eq!(crash.exit_code(), 2);
        assert!(!crash.guest_requested());
        assert!(StopReason::GuestExit(5).guest_requested());
        assert_eq!(crash.to_string(), "guest crashed on vCPU 0: triple fault");
    }

    #[test]
    fn first_report_wins_and_late_reports_are_harmless() {
        let (tx, rx) = StopSender::channel();
        tx.stop(StopReason::GuestReset);
        tx.clone().stop(StopReason::GuestPowerOff);
        assert_eq!(rx.recv().ok(), Some(StopReason::GuestReset));
        drop(rx);
        tx.stop(StopReason::GuestReset);
    }
}
