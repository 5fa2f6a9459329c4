//! Boot-time CPU state: GDT, identity page tables, special, general and
//! FPU registers, for either boot protocol.
//!
//! Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit
//! BOOT PROTOCOL"): the boot vCPU starts in long mode at the kernel's 64-bit
//! entry point with `rsi` pointing at the zero page: flat 4 GiB segments,
//! paging on with an identity map covering the kernel, interrupts off.
//!
//! PVH (xen/include/public/arch-x86/hvm/start_info.h): 32-bit protected
//! mode, flat 4 GiB code and data segments, paging and long mode off,
//! `ebx` = `hvm_start_info`, interrupts off.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{
    BOOT_GDT_ADDR, BOOT_IDT_ADDR, BOOT_STACK_POINTER, PDE_ADDR, PDPTE_ADDR, PML4_ADDR,
    PVH_INFO_START, ZERO_PAGE_ADDR,
};
use super::{Error, Result};
use crate::boot::BootProtocol;
use crate::probe::layout::{kvm_segment_from_gdt, segment_descriptor};

/// Kernel code selector (GDT index 1).
pub const BOOT_CS: u16 = 0x08;
/// Kernel data selector (GDT index 2).
pub const BOOT_DS: u16 = 0x10;
/// TSS selector (GDT index 3).
pub const BOOT_TSS: u16 = 0x18;

/// CR0: protected mode (arch/x86/include/uapi/asm/processor-flags.h).
pub const X86_CR0_PE: u64 = 1 << 0;
/// CR0: extension type.
pub const X86_CR0_ET: u64 = 1 << 4;
/// CR0: paging.
pub const X86_CR0_PG: u64 = 1 << 31;
/// CR4: physical address extension.
pub const X86_CR4_PAE: u64 = 1 << 5;
/// EFER: long mode enable (arch/x86/include/asm/msr-index.h).
pub const EFER_LME: u64 = 1 << 8;
/// EFER: long mode active.
pub const EFER_LMA: u64 = 1 << 10;

/// Page-table entry: present | writable.
const PTE_PRESENT_RW: u64 = 0x3;
/// Page-directory entry: present | writable | 2 MiB page.
const PDE_LARGE_RW: u64 = 0x83;
/// FPU control word at reset (fninit value).
const FPU_FCW: u16 = 0x37f;
/// MXCSR at reset: all SSE exceptions masked.
const FPU_MXCSR: u32 = 0x1f80;

/// The boot GDT: null, code (64-bit, or 32-bit for PVH), data, TSS (flat,
/// 4 GiB limit).
pub fn boot_gdt(protocol: BootProtocol) -> [u64; 4] {
    let code_flags = match protocol {
        // G, L.
        BootProtocol::Linux64 { .. } => 0xa,
        // G, D/B.
        BootProtocol::Pvh { .. } => 0xc,
    };
    [
        0,
        // Present, DPL 0, code, execute/read, accessed.
        segment_descriptor(0, 0xfffff, 0x9b, code_flags),
        // Present, DPL 0, data, read/write, accessed; G, D/B.
        segment_descriptor(0, 0xfffff, 0x93, 0xc),
        // Present, DPL 0, system, busy 32/64-bit TSS; G.
        segment_descriptor(0, 0xfffff, 0x8b, 0x8),
    ]
}

/// The identity map of the first GiB: PML4[0] → PDPTE, PDPTE[0] → PDE,
/// 512 PDEs of 2 MiB pages.
pub fn identity_page_tables() -> ([u64; 512], [u64; 512], [u64; 512]) {
    let mut pml4 = [0u64; 512];
    let mut pdpte = [0u64; 512];
    let mut pde = [0u64; 512];
    pml4[0] = PDPTE_ADDR | PTE_PRESENT_RW;
    pdpte[0] = PDE_ADDR | PTE_PRESENT_RW;
    for (i, entry) in (0u64..).zip(pde.iter_mut()) {
        *entry = (i << 21) | PDE_LARGE_RW;
    }
    (pml4, pdpte, pde)
}

/// Writes the boot GDT, the empty IDT and the page tables (unused by PVH
/// kernels, which start with paging off) to guest memory.
pub fn write_boot_tables(memory: &GuestMemoryMmap, protocol: BootProtocol) -> Result<()> {
    let write = |addr: u64, entries: &[u64]| {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        memory
            .write_slice(&bytes, GuestAddress(addr))
            .map_err(|e| Error::WriteBootTables(addr, e))
    };
    write(BOOT_GDT_ADDR, &boot_gdt(protocol))?;
    write(BOOT_IDT_ADDR, &[0])?;
    let (pml4, pdpte, pde) = identity_page_tables();
    write(PML4_ADDR, &pml4)?;
    write(PDPTE_ADDR, &pdpte)?;
    write(PDE_ADDR, &pde)
}

/// Turns `sregs` (read from a fresh vCPU, to keep the APIC base and the
/// rest) into the boot state of `protocol`.
pub fn boot_sregs(mut sregs: kvm_sregs, protocol: BootProtocol) -> kvm_sregs {
    let gdt = boot_gdt(protocol);
    let segment = |selector: u16| kvm_segment_from_gdt(gdt[usize::from(selector >> 3)], selector);
    let data = segment(BOOT_DS);
    sregs.cs = segment(BOOT_CS);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = segment(BOOT_TSS);
    sregs.ldt = kvm_segment {
        type_: 0x2,
        unusable: 1,
        ..Default::default()
    };
    sregs.gdt.base = BOOT_GDT_ADDR;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT_ADDR;
    sregs.idt.limit = 7;
    match protocol {
        BootProtocol::Linux64 { .. } => {
            sregs.cr0 |= X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
            sregs.cr3 = PML4_ADDR;
            sregs.cr4 |= X86_CR4_PAE;
            sregs.efer |= EFER_LME | EFER_LMA;
        }
        BootProtocol::Pvh { .. } => {
            sregs.cr0 = (sregs.cr0 | X86_CR0_PE | X86_CR0_ET) & !X86_CR0_PG;
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.efer &= !(EFER_LME | EFER_LMA);
        }
    }
    sregs
}

/// General registers of the boot vCPU: the entry point, and the zero page
/// and boot stack (64-bit protocol) or the start info (PVH).
pub fn boot_regs(protocol: BootProtocol) -> kvm_regs {
    // Bit 1 of RFLAGS is reserved and always set; IF is clear.
    let rflags = 0x2;
    match protocol {
        BootProtocol::Linux64 { entry } => kvm_regs {
            rip: entry,
            rsp: BOOT_STACK_POINTER,
            rbp: BOOT_STACK_POINTER,
            rsi: ZERO_PAGE_ADDR,
            rflags,
            ..Default::default()
        },
        BootProtocol::Pvh { entry } => kvm_regs {
            rip: entry,
            rbx: PVH_INFO_START,
            rflags,
            ..Default::default()
        },
    }
}

/// FPU state at reset (every vCPU).
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: FPU_FCW,
        mxcsr: FPU_MXCSR,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryMmap;

    const LINUX64: BootProtocol = BootProtocol::Linux64 { entry: 0x100_0000 };
    const PVH: BootProtocol = BootProtocol::Pvh { entry: 0x100_0100 };

    #[test]
    fn gdt_matches_firecracker_encoding() {
        let gdt = boot_gdt(LINUX64);
        assert_eq!(gdt[1], 0x00af_9b00_0000_ffff, "code");
        assert_eq!(gdt[2], 0x00cf_9300_0000_ffff, "data");
        assert_eq!(gdt[3], 0x008f_8b00_0000_ffff, "tss");
        let pvh = boot_gdt(PVH);
        assert_eq!(pvh[1], 0x00cf_9b00_0000_ffff, "32-bit code");
        assert_eq!(pvh[2..], gdt[2..]);
    }

    #[test]
    fn page_tables_identity_map_one_gib() {
        let (pml4, pdpte, pde) = identity_page_tables();
        assert_eq!(pml4[0], 0xa003);
        assert_eq!(pdpte[0], 0xb003);
        assert_eq!(pde[0], 0x83);
        assert_eq!(pde[511], (511 << 21) | 0x83);
        assert!(pml4[1..].iter().all(|e| *e == 0));
    }

    #[test]
    fn sregs_enter_long_mode_with_flat_segments() {
        let s = boot_sregs(kvm_sregs::default(), LINUX64);
        assert_eq!(
            (s.cs.selector, s.cs.l, s.cs.db, s.cs.dpl),
            (BOOT_CS, 1, 0, 0)
        );
        assert_eq!((s.ds.selector, s.ds.limit), (BOOT_DS, 0xffff_ffff));
        assert_eq!((s.tr.selector, s.tr.type_), (BOOT_TSS, 0xb));
        assert_eq!(s.cr3, PML4_ADDR);
        assert_eq!(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(s.cr0 & X86_CR0_PG, X86_CR0_PG);
        assert_eq!((s.gdt.base, s.gdt.limit), (BOOT_GDT_ADDR, 31));
    }

    #[test]
    fn pvh_sregs_are_32_bit_protected_mode_without_paging() {
        let fresh = kvm_sregs {
            cr0: 0x6000_0010,
            cr4: X86_CR4_PAE,
            efer: EFER_LME,
            ..Default::default()
        };
        let s = boot_sregs(fresh, PVH);
        assert_eq!(
            (s.cs.selector, s.cs.l, s.cs.db, s.cs.limit),
            (BOOT_CS, 0, 1, 0xffff_ffff)
        );
        assert_eq!((s.ss.selector, s.ss.db), (BOOT_DS, 1));
        assert_eq!(s.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE);
        assert_eq!((s.cr4, s.efer & (EFER_LME | EFER_LMA)), (0, 0));
    }

    #[test]
    fn regs_point_at_entry_and_boot_information() {
        let r = boot_regs(LINUX64);
        assert_eq!(
            (r.rip, r.rsi, r.rsp, r.rflags),
            (0x100_0000, 0x7000, 0x8ff0, 2)
        );
        let p = boot_regs(PVH);
        assert_eq!((p.rip, p.rbx, p.rsi, p.rflags), (0x100_0100, 0x6000, 0, 2));
        assert_eq!(boot_fpu().fcw, 0x37f);
    }

    #[test]
    fn tables_land_in_guest_memory() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)])?;
        write_boot_tables(&mem, LINUX64)?;
        let pml4: u64 = mem.read_obj(GuestAddress(PML4_ADDR))?;
        let pde_last: u64 = mem.read_obj(GuestAddress(PDE_ADDR + 511 * 8))?;
        let code: u64 = mem.read_obj(GuestAddress(BOOT_GDT_ADDR + 8))?;
        assert_eq!(pml4, 0xa003);
        assert_eq!(pde_last, (511 << 21) | 0x83);
        assert_eq!(code, boot_gdt(LINUX64)[1]);
        Ok(())
    }
}
