//! KVM capability probe: can this host's KVM run a Linux guest?
//!
//! Reading `/proc/cpuinfo` is not enough: a software nested hypervisor such
//! as `kvm_pvm` provides a working `/dev/kvm` whose guests run ring-0 code
//! fine but whose ring-3 `syscall` does not enter ring 0, so a Linux guest
//! dies as soon as PID 1 makes its first system call. The probe therefore
//! runs a tiny long-mode guest that drops to ring 3, executes `syscall`, and
//! checks that the `syscall` handler runs at CPL 0 (see `guest_code`).

mod guest_code;
mod guest_vm;
pub(crate) mod layout;
mod outcome;
pub(crate) mod runner;
mod vcpu_setup;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

pub use guest_code::{GuestProgram, MARKER_PORT, USER_PORT};
pub use outcome::{CpuState, GuestOutcome};
pub use runner::{open_kvm, run_guest, KICK_SIGNAL_OFFSET};
pub use vcpu_setup::SetupRejected;

use crate::error::Result;

/// The usual KVM device.
pub const DEFAULT_KVM_DEVICE: &str = "/dev/kvm";
/// How long the probe guest may take before it counts as hung.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
/// Present when the KVM module is the `kvm_pvm` software hypervisor.
pub const PVM_MODULE_PATH: &str = "/sys/module/kvm_pvm";

/// The probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvmProbe {
    /// `KVM_GET_API_VERSION` (always 12 on a usable KVM).
    pub api_version: i32,
    /// Whether KVM can run a Linux guest (a ring-3 `syscall` reached ring 0).
    pub linux_capable: bool,
    /// What the guest did, and whether `kvm_pvm` is loaded (context only).
    pub detail: String,
    /// Wall time of the whole probe, opening the device included.
    #[serde(rename = "elapsed_ms", serialize_with = "millis")]
    pub elapsed: Duration,
}

/// Serialises a duration as fractional milliseconds.
fn millis<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Probes `dev` (usually `/dev/kvm`) with [`DEFAULT_DEADLINE`].
///
/// Returns `Err` only when the device cannot be opened or used at all
/// (open, API version, VM/vCPU/memory creation). Everything the guest does
/// or fails to do is a verdict: `linux_capable` plus `detail`.
pub fn probe_kvm(dev: &Path) -> Result<KvmProbe> {
    probe_kvm_with_deadline(dev, DEFAULT_DEADLINE)
}

/// [`probe_kvm`] with an explicit deadline for the guest.
pub fn probe_kvm_with_deadline(dev: &Path, deadline: Duration) -> Result<KvmProbe> {
    let started = Instant::now();
    let kvm = open_kvm(dev)?;
    let outcome = run_guest(&kvm, GuestProgram::SyscallFromRing3, deadline)?;
    let pvm = Path::new(PVM_MODULE_PATH).exists();
    Ok(KvmProbe {
        api_version: kvm.get_api_version(),
        linux_capable: outcome.reached_ring0(),
        detail: describe(&outcome, pvm),
        elapsed: started.elapsed(),
    })
}

/// The `detail` line: the verdict's reason plus the `kvm_pvm` context.
pub fn describe(outcome: &GuestOutcome, pvm_loaded: bool) -> String {
    let context = if pvm_loaded {
        "kvm_pvm module loaded (software nested hypervisor)"
    } else {
        "kvm_pvm module not loaded"
    };
    if outcome.reached_ring0() {
        format!("ring-3 syscall reached ring 0: {outcome}; {context}")
    } else {
        format!("ring-3 syscall did not reach ring 0: {outcome}; {context}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_states_verdict_outcome_and_pvm_context() {
        let shutdown = GuestOutcome::Shutdown { state: None };
        assert_eq!(
            describe(&shutdown, true),
            "ring-3 syscall did not reach ring 0: KVM_EXIT_SHUTDOWN (triple fault); \
             kvm_pvm module loaded (software nested hypervisor)"
        );
        let marker = GuestOutcome::Marker {
            guest_cs: 0x08,
            state: Some(CpuState {
                rip: 0x6007,
                cs_selector: 0x08,
                cs_dpl: 0,
            }),
        };
        let detail = describe(&marker, false);
        assert!(detail.starts_with("ring-3 syscall reached ring 0: marker out to port 0x510"));
        assert!(detail.ends_with("kvm_pvm module not loaded"));
    }

    #[test]
    fn probe_serialises_elapsed_as_milliseconds() -> std::result::Result<(), serde_json::Error> {
        let probe = KvmProbe {
            api_version: 12,
            linux_capable: false,
            detail: "x".into(),
            elapsed: Duration::from_micros(1500),
        };
        let json = serde_json::to_value(&probe)?;
        assert_eq!(json["elapsed_ms"], 1.5);
        assert_eq!(json["linux_capable"], false);
        assert_eq!(json["api_version"], 12);
        Ok(())
    }
}
