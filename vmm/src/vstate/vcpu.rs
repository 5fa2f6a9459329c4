//! One vCPU: its boot configuration (CPUID, MSRs, FPU, LAPIC, and for the
//! boot vCPU the 64-bit boot registers) and its run loop, which routes port
//! I/O and MMIO exits to the buses and turns other exits into stop reasons.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvm_bindings::{
    kvm_msr_entry, Msrs, KVM_MAX_CPUID_ENTRIES, KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{Cap, Kvm, VcpuExit, VcpuFd};

use super::{Error, Result, Vm};
use crate::arch::cpuid::{filter_cpuid, CpuidContext};
use crate::arch::{lapic, msr, regs};
use crate::boot::BootProtocol;
use crate::devices::Bus;
use crate::stop::{StopReason, StopSender};

/// A vCPU and what its exits are routed to.
pub struct Vcpu {
    id: u8,
    fd: VcpuFd,
    io_bus: Arc<Bus>,
    mmio_bus: Arc<Bus>,
    stop: StopSender,
}

/// What the run loop does after an exit.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Stop(StopReason),
}

impl Vcpu {
    /// Creates vCPU `id` of `vm`.
    pub fn create(
        vm: &Vm,
        id: u8,
        io_bus: Arc<Bus>,
        mmio_bus: Arc<Bus>,
        stop: StopSender,
    ) -> Result<Self> {
        let fd = vm
            .fd()
            .create_vcpu(u64::from(id))
            .map_err(|e| Error::Kvm("KVM_CREATE_VCPU", e))?;
        Ok(Self {
            id,
            fd,
            io_bus,
            mmio_bus,
            stop,
        })
    }

    /// Sets CPUID, MSRs, FPU and LAPIC; `boot` (the boot vCPU only) also
    /// sets the registers the boot protocol enters the kernel with. Other
    /// vCPUs wait for the guest's INIT/SIPI in the in-kernel LAPIC.
    pub fn configure(&self, kvm: &Kvm, vcpu_count: u8, boot: Option<BootProtocol>) -> Result<()> {
        let kvm_err = |what| move |e| Error::Kvm(what, e);
        let mut cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        let ctx = CpuidContext {
            vcpu_id: self.id,
            vcpu_count,
            tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
        };
        filter_cpuid(cpuid.as_mut_slice(), ctx);
        self.fd
            .set_cpuid2(&cpuid)
            .map_err(kvm_err("KVM_SET_CPUID2"))?;
        self.set_msrs()?;
        self.fd
            .set_fpu(&regs::boot_fpu())
            .map_err(kvm_err("KVM_SET_FPU"))?;
        let mut lapic_state = self.fd.get_lapic().map_err(kvm_err("KVM_GET_LAPIC"))?;
        lapic::set_lint(&mut lapic_state);
        self.fd
            .set_lapic(&lapic_state)
            .map_err(kvm_err("KVM_SET_LAPIC"))?;
        if let Some(boot) = boot {
            let sregs = self.fd.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
            self.fd
                .set_sregs(&regs::boot_sregs(sregs, boot))
                .map_err(kvm_err("KVM_SET_SREGS"))?;
            self.fd
                .set_regs(&regs::boot_regs(boot))
                .map_err(kvm_err("KVM_SET_REGS"))?;
        }
        Ok(())
    }

    fn set_msrs(&self) -> Result<()> {
        let entries: Vec<kvm_msr_entry> = msr::boot_msrs()
            .into_iter()
            .map(|(index, data)| kvm_msr_entry {
                index,
                data,
                ..Default::default()
            })
            .collect();
        let msrs = Msrs::from_entries(&entries).map_err(|_| Error::Msrs {
            written: 0,
            total: entries.len(),
        })?;
        let written = self
            .fd
            .set_msrs(&msrs)
            .map_err(|e| Error::Kvm("KVM_SET_MSRS", e))?;
        if written != entries.len() {
            return Err(Error::Msrs {
                written,
                total: entries.len(),
            });
        }
        Ok(())
    }

    /// Runs the vCPU until it stops the VM or `should_stop` is set (and the
    /// thread is kicked out of `KVM_RUN`). A stop it causes is reported.
    pub fn run(mut self, should_stop: &AtomicBool) {
        loop {
            if should_stop.load(Ordering::SeqCst) {
                return;
            }
            let step = self.run_once();
            if let Step::Stop(reason) = step {
                self.stop.stop(reason);
                return;
            }
        }
    }

    fn run_once(&mut self) -> Step {
        let step = match self.fd.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                if !self.io_bus.read(u64::from(port), data) {
                    log::trace!("vCPU {}: read of unhandled port {port:#x}", self.id);
                    data.fill(0xff);
                }
                return Step::Continue;
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                if !self.io_bus.write(u64::from(port), data) {
                    log::trace!("vCPU {}: write to unhandled port {port:#x}", self.id);
                }
                return Step::Continue;
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                if !self.mmio_bus.read(addr, data) {
                    log::debug!("vCPU {}: read of unhandled MMIO {addr:#x}", self.id);
                    data.fill(0xff);
                }
                return Step::Continue;
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                if !self.mmio_bus.write(addr, data) {
                    log::debug!("vCPU {}: write to unhandled MMIO {addr:#x}", self.id);
                }
                return Step::Continue;
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => system_event(kind),
            Ok(VcpuExit::Shutdown) => Err("triple fault (KVM_EXIT_SHUTDOWN)".to_string()),
            Ok(VcpuExit::InternalError) => {
                Err("KVM_EXIT_INTERNAL_ERROR (emulation failure)".into())
            }
            Ok(VcpuExit::FailEntry(reason, cpu)) => Err(format!(
                "KVM_EXIT_FAIL_ENTRY (hardware reason {reason:#x}, cpu {cpu})"
            )),
            Ok(VcpuExit::Intr) => return Step::Continue,
            Ok(other) => Err(format!("unexpected exit {other:?}")),
            Err(e) if matches!(e.errno(), libc::EINTR | libc::EAGAIN) => return Step::Continue,
            Err(e) => Err(format!("KVM_RUN failed: {e}")),
        };
        match step {
            Ok(reason) => Step::Stop(reason),
            Err(what) => {
                let rip = self
                    .fd
                    .get_regs()
                    .map(|r| format!(" at rip {:#x}", r.rip))
                    .unwrap_or_default();
                Step::Stop(StopReason::Crash {
                    vcpu: self.id,
                    what: format!("{what}{rip}"),
                })
            }
        }
    }
}

/// Maps a `KVM_EXIT_SYSTEM_EVENT` type to a stop (include/uapi/linux/kvm.h).
fn system_event(kind: u32) -> std::result::Result<StopReason, String> {
    match kind {
        KVM_SYSTEM_EVENT_SHUTDOWN => Ok(StopReason::GuestPowerOff),
        KVM_SYSTEM_EVENT_RESET => Ok(StopReason::GuestReset),
        KVM_SYSTEM_EVENT_CRASH => Err("guest reported a crash (KVM_SYSTEM_EVENT_CRASH)".into()),
        other => Err(format!("unknown system event {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_events_map_to_stops() {
        assert_eq!(
            system_event(KVM_SYSTEM_EVENT_SHUTDOWN),
            Ok(StopReason::GuestPowerOff)
        );
        assert_eq!(
            system_event(KVM_SYSTEM_EVENT_RESET),
            Ok(StopReason::GuestReset)
        );
        assert!(system_event(KVM_SYSTEM_EVENT_CRASH).is_err());
        assert!(system_event(99).is_err());
    }
}
