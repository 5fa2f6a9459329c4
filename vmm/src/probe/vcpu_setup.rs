//! Register state that puts the probe vCPU straight into 64-bit long mode at
//! CPL 0, with `syscall` enabled and pointed at the handler.

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_sregs, Msrs, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuFd};

use super::layout::{
    build_gdt, kvm_segment_from_gdt, GDT_ADDR, KERNEL_CS, KERNEL_DS, KERNEL_STACK_TOP, PML4_ADDR,
    RING0_CODE_ADDR, SYSCALL_HANDLER_ADDR, TSS_SELECTOR,
};

/// CR0: protected mode enable.
pub const CR0_PE: u64 = 1 << 0;
/// CR0: extension type (always 1 on modern CPUs).
pub const CR0_ET: u64 = 1 << 4;
/// CR0: native FPU error reporting.
pub const CR0_NE: u64 = 1 << 5;
/// CR0: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension (required by long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// EFER: `syscall`/`sysret` enable.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER: long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
pub const EFER_LMA: u64 = 1 << 10;

/// MSR_STAR: segment selectors for `syscall`/`sysret`.
pub const MSR_STAR: u32 = 0xc000_0081;
/// MSR_LSTAR: 64-bit `syscall` entry point.
pub const MSR_LSTAR: u32 = 0xc000_0082;
/// MSR_SYSCALL_MASK (SFMASK): RFLAGS bits cleared by `syscall`.
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// What Linux puts in SFMASK: TF, IF, DF, IOPL, NT, AC.
pub const SYSCALL_RFLAGS_MASK: u64 = 0x4_7700;

/// Reserved RFLAGS bit 1, which always reads as 1.
pub const RFLAGS_RESERVED: u64 = 0x2;

/// The failed step of a vCPU setup that KVM rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRejected {
    /// The ioctl (or step) that failed.
    pub step: &'static str,
    /// What KVM said.
    pub error: String,
}

impl SetupRejected {
    fn new(step: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            step,
            error: error.to_string(),
        }
    }
}

/// Turns `sregs` (as read from a fresh vCPU, to keep e.g. the APIC base)
/// into 64-bit long mode: flat kernel segments from the GDT, paging on,
/// EFER.LME|LMA|SCE, no IDT.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let gdt = build_gdt();
    let entry = |selector: u16| gdt[usize::from(selector >> 3)];
    let data = kvm_segment_from_gdt(entry(KERNEL_DS), KERNEL_DS);
    sregs.cs = kvm_segment_from_gdt(entry(KERNEL_CS), KERNEL_CS);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    let mut tr = kvm_segment_from_gdt(entry(TSS_SELECTOR), TSS_SELECTOR);
    tr.type_ = 0xb; // The CPU marks a loaded TSS busy (64-bit busy TSS).
    sregs.tr = tr;
    sregs.ldt = kvm_bindings::kvm_segment {
        type_: 0x2,
        unusable: 1,
        ..Default::default()
    };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    // An empty IDT: any exception becomes a triple fault (KVM_EXIT_SHUTDOWN).
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA | EFER_SCE;
    sregs
}

/// General registers at reset: ring-0 code, kernel stack, interrupts off.
pub fn start_regs() -> kvm_regs {
    kvm_regs {
        rip: RING0_CODE_ADDR,
        rsp: KERNEL_STACK_TOP,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

/// The `syscall` MSRs: STAR = kernel CS in bits 47:32 and the sysret base
/// (kernel DS) in bits 63:48, LSTAR = handler, SFMASK as Linux sets it.
pub fn syscall_msrs() -> [(u32, u64); 3] {
    let star = (u64::from(KERNEL_DS) << 48) | (u64::from(KERNEL_CS) << 32);
    [
        (MSR_STAR, star),
        (MSR_LSTAR, SYSCALL_HANDLER_ADDR),
        (MSR_SYSCALL_MASK, SYSCALL_RFLAGS_MASK),
    ]
}

/// Applies CPUID, special and general registers and the `syscall` MSRs.
pub fn configure(kvm: &Kvm, vcpu: &VcpuFd) -> std::result::Result<(), SetupRejected> {
    let cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| SetupRejected::new("KVM_GET_SUPPORTED_CPUID", e))?;
    vcpu.set_cpuid2(&cpuid)
        .map_err(|e| SetupRejected::new("KVM_SET_CPUID2", e))?;
    let sregs = vcpu
        .get_sregs()
        .map_err(|e| SetupRejected::new("KVM_GET_SREGS", e))?;
    vcpu.set_sregs(&long_mode_sregs(sregs))
        .map_err(|e| SetupRejected::new("KVM_SET_SREGS", e))?;
    vcpu.set_regs(&start_regs())
        .map_err(|e| SetupRejected::new("KVM_SET_REGS", e))?;
    let entries: Vec<kvm_msr_entry> = syscall_msrs()
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries)
        .map_err(|e| SetupRejected::new("building the MSR list", format!("{e:?}")))?;
    let written = vcpu
        .set_msrs(&msrs)
        .map_err(|e| SetupRejected::new("KVM_SET_MSRS", e))?;
    if written != entries.len() {
        let rejected = entries.get(written).map_or(0, |e| e.index);
        return Err(SetupRejected::new(
            "KVM_SET_MSRS",
            format!(
                "wrote {written} of {} MSRs; MSR {rejected:#x} rejected",
                entries.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sregs_enter_long_mode_at_cpl0() {
        let s = long_mode_sregs(kvm_sregs::default());
        assert_eq!(s.cs.selector, KERNEL_CS);
        assert_eq!((s.cs.dpl, s.cs.l, s.cs.db, s.cs.present), (0, 1, 0, 1));
        assert_eq!(s.ss.selector, KERNEL_DS);
        assert_eq!((s.ss.dpl, s.ss.type_ & 0x2), (0, 0x2), "writable ring-0 SS");
        assert_eq!(s.tr.type_, 0xb);
        assert_eq!(s.gdt.limit, 55);
        assert_eq!(s.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
        assert_eq!(s.cr4 & CR4_PAE, CR4_PAE);
        assert_eq!(s.efer, EFER_LME | EFER_LMA | EFER_SCE);
        assert_eq!(s.cr3, PML4_ADDR);
    }

    #[test]
    fn star_holds_kernel_cs_and_sysret_base() {
        let msrs = syscall_msrs();
        assert_eq!(msrs[0], (MSR_STAR, 0x0010_0008_0000_0000));
        assert_eq!(msrs[1], (MSR_LSTAR, SYSCALL_HANDLER_ADDR));
        assert_eq!(msrs[2].1 & 0x3200, 0x3200, "IF and IOPL cleared on entry");
    }

    #[test]
    fn regs_start_in_ring0_code_with_interrupts_off() {
        let r = start_regs();
        assert_eq!(
            (r.rip, r.rsp, r.rflags),
            (RING0_CODE_ADDR, KERNEL_STACK_TOP, 0x2)
        );
    }
}
