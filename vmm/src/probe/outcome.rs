//! What a probe guest did, and how to read it.

use std::fmt;
use std::time::Duration;

use super::guest_code::{MARKER_PORT, USER_PORT};
use super::vcpu_setup::SetupRejected;

/// The vCPU's code segment and instruction pointer after an exit, as KVM
/// reports them (`KVM_GET_SREGS` / `KVM_GET_REGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuState {
    /// RIP.
    pub rip: u64,
    /// CS selector (its low two bits are the RPL, equal to CPL for CS).
    pub cs_selector: u16,
    /// DPL of the cached CS descriptor (equals CPL for a non-conforming CS).
    pub cs_dpl: u8,
}

impl CpuState {
    /// Whether this state is ring 0 by both the selector and the descriptor.
    pub fn is_ring0(&self) -> bool {
        self.cs_selector & 3 == 0 && self.cs_dpl == 0
    }
}

impl fmt::Display for CpuState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rip {:#x}, CS {:#x} (DPL {})",
            self.rip, self.cs_selector, self.cs_dpl
        )
    }
}

/// How one probe guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestOutcome {
    /// The marker `out` on [`MARKER_PORT`] exited to the VMM.
    Marker {
        /// Low byte of CS as the guest itself read it (`mov eax, cs`).
        guest_cs: u8,
        /// Registers after the exit; `None` if KVM would not report them.
        state: Option<CpuState>,
    },
    /// Any other port or MMIO access (e.g. [`USER_PORT`] from ring 3).
    OtherAccess {
        /// e.g. "out to port 0x511".
        what: String,
        /// Registers after the exit.
        state: Option<CpuState>,
    },
    /// `KVM_EXIT_SHUTDOWN`: a triple fault (fault with no IDT).
    Shutdown {
        /// Registers after the exit.
        state: Option<CpuState>,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`, e.g. an instruction KVM could not emulate.
    InternalError {
        /// `kvm_run.internal.suberror` (1 = emulation failure).
        suberror: u32,
        /// Registers after the exit.
        state: Option<CpuState>,
    },
    /// Any other exit reason.
    OtherExit {
        /// The exit, as text.
        exit: String,
        /// Registers after the exit.
        state: Option<CpuState>,
    },
    /// `KVM_RUN` failed with an error other than EINTR/EAGAIN.
    RunFailed(String),
    /// KVM rejected the vCPU setup.
    SetupRejected(SetupRejected),
    /// No exit within the deadline.
    Timeout {
        /// How long the probe waited.
        waited: Duration,
        /// Whether the vCPU thread ignored the kick and was left behind.
        abandoned: bool,
    },
}

impl GuestOutcome {
    /// True only for a marker exit at CPL 0, by what the guest saw and by
    /// what KVM reports.
    pub fn reached_ring0(&self) -> bool {
        match self {
            Self::Marker {
                guest_cs,
                state: Some(state),
            } => guest_cs & 3 == 0 && state.is_ring0(),
            _ => false,
        }
    }
}

/// Appends ", at <state>" when KVM reported registers.
fn at(state: &Option<CpuState>) -> String {
    state.map(|s| format!(" at {s}")).unwrap_or_default()
}

impl fmt::Display for GuestOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Marker { guest_cs, state } => {
                let kvm_view =
                    state.map_or_else(|| "KVM_GET_SREGS failed".to_string(), |s| s.to_string());
                write!(
                    f,
                    "marker out to port {MARKER_PORT:#x} (guest-read CS {guest_cs:#x}; {kvm_view})"
                )
            }
            Self::OtherAccess { what, state } => {
                write!(f, "unexpected {what}{}", at(state))?;
                if what.contains(&format!("{USER_PORT:#x}")) {
                    write!(
                        f,
                        " (ring-3 code ran after syscall and its OUT was not trapped)"
                    )?;
                }
                Ok(())
            }
            Self::Shutdown { state } => {
                write!(f, "KVM_EXIT_SHUTDOWN (triple fault){}", at(state))
            }
            Self::InternalError { suberror, state } => write!(
                f,
                "KVM_EXIT_INTERNAL_ERROR (suberror {suberror}{}){}",
                if *suberror == 1 {
                    ": emulation failure"
                } else {
                    ""
                },
                at(state)
            ),
            Self::OtherExit { exit, state } => {
                write!(f, "unexpected exit {exit}{}", at(state))
            }
            Self::RunFailed(e) => write!(f, "KVM_RUN failed: {e}"),
            Self::SetupRejected(r) => write!(f, "{} rejected the setup: {}", r.step, r.error),
            Self::Timeout { waited, abandoned } => write!(
                f,
                "no exit within {} ms{}",
                waited.as_millis(),
                if *abandoned {
                    " (the vCPU thread ignored the kick and was abandoned)"
                } else {
                    ""
                }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cs_selector: u16, cs_dpl: u8) -> Option<CpuState> {
        Some(CpuState {
            rip: 0x600a,
            cs_selector,
            cs_dpl,
        })
    }

    #[test]
    fn only_a_ring0_marker_counts() {
        let ok = GuestOutcome::Marker {
            guest_cs: 0x08,
            state: state(0x08, 0),
        };
        assert!(ok.reached_ring0());
        for bad in [
            GuestOutcome::Marker {
                guest_cs: 0x08,
                state: state(0x23, 3),
            },
            GuestOutcome::Marker {
                guest_cs: 0x08,
                state: state(0x08, 3),
            },
            GuestOutcome::Marker {
                guest_cs: 0x23,
                state: state(0x08, 0),
            },
            GuestOutcome::Marker {
                guest_cs: 0x08,
                state: None,
            },
            GuestOutcome::Shutdown {
                state: state(0x23, 3),
            },
            GuestOutcome::Timeout {
                waited: Duration::from_secs(2),
                abandoned: false,
            },
        ] {
            assert!(!bad.reached_ring0(), "{bad}");
        }
    }

    #[test]
    fn descriptions_name_the_exit() {
        let shutdown = GuestOutcome::Shutdown {
            state: state(0x23, 3),
        };
        assert_eq!(
            shutdown.to_string(),
            "KVM_EXIT_SHUTDOWN (triple fault) at rip 0x600a, CS 0x23 (DPL 3)"
        );
        let user_out = GuestOutcome::OtherAccess {
            what: format!("out to port {USER_PORT:#x}"),
            state: None,
        };
        assert!(user_out.to_string().contains("not trapped"));
        let internal = GuestOutcome::InternalError {
            suberror: 1,
            state: None,
        };
        assert!(internal.to_string().contains("emulation failure"));
    }
}
