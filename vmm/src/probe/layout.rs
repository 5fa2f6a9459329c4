//! Guest-physical layout of the probe guest and the builders for the
//! structures the CPU reads from guest memory: 4-level page tables, the GDT
//! and the 64-bit TSS.
//!
//! Guest-physical addresses equal guest-virtual addresses (identity map), and
//! every page is user-accessible so ring-3 code can run anywhere in it.

use kvm_bindings::kvm_segment;

/// Size of the probe guest's memory (one 2 MiB large page maps all of it).
pub const MEM_SIZE: usize = 2 << 20;

/// Global descriptor table.
pub const GDT_ADDR: u64 = 0x0500;
/// 64-bit task-state segment (needed for a valid TR; holds no I/O bitmap).
pub const TSS_ADDR: u64 = 0x0600;
/// Page-map level 4 (CR3).
pub const PML4_ADDR: u64 = 0x1000;
/// Page-directory-pointer table.
pub const PDPT_ADDR: u64 = 0x2000;
/// Page directory, whose entry 0 is one 2 MiB page at guest-physical 0.
pub const PD_ADDR: u64 = 0x3000;
/// Ring-0 code the vCPU starts at.
pub const RING0_CODE_ADDR: u64 = 0x4000;
/// Ring-3 code reached through `iretq`.
pub const USER_CODE_ADDR: u64 = 0x5000;
/// `syscall` entry point (MSR_LSTAR).
pub const SYSCALL_HANDLER_ADDR: u64 = 0x6000;
/// Initial ring-0 stack pointer (stack grows down into 0x7000..0x8000).
pub const KERNEL_STACK_TOP: u64 = 0x8000;
/// Ring-3 stack pointer (stack grows down into 0x8000..0x9000).
pub const USER_STACK_TOP: u64 = 0x9000;

/// Kernel code selector (GDT index 1, RPL 0).
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector (GDT index 2, RPL 0).
pub const KERNEL_DS: u16 = 0x10;
/// User data selector (GDT index 3, RPL 3).
pub const USER_DS: u16 = 0x1b;
/// User code selector (GDT index 4, RPL 3).
pub const USER_CS: u16 = 0x23;
/// TSS selector (GDT indexes 5 and 6: a 16-byte system descriptor).
pub const TSS_SELECTOR: u16 = 0x28;
/// Size of a 64-bit TSS without an I/O permission bitmap.
pub const TSS_SIZE: usize = 0x68;

/// Page-table entry: present.
pub const PTE_PRESENT: u64 = 1 << 0;
/// Page-table entry: writable.
pub const PTE_WRITABLE: u64 = 1 << 1;
/// Page-table entry: accessible from ring 3.
pub const PTE_USER: u64 = 1 << 2;
/// Page-directory entry: maps a 2 MiB page rather than a page table.
pub const PTE_LARGE: u64 = 1 << 7;

/// One 4 KiB page-table page.
pub type TablePage = [u64; 512];

/// The three page-table pages that identity-map guest-physical 0..2 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTables {
    /// Page-map level 4, to be written at [`PML4_ADDR`].
    pub pml4: TablePage,
    /// Page-directory-pointer table, to be written at [`PDPT_ADDR`].
    pub pdpt: TablePage,
    /// Page directory, to be written at [`PD_ADDR`].
    pub pd: TablePage,
}

/// Builds identity-mapped page tables for 0..2 MiB, present, writable and
/// user-accessible at every level (the CPU ANDs the U/S bits of all levels).
pub fn build_page_tables() -> PageTables {
    let flags = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
    let mut tables = PageTables {
        pml4: [0; 512],
        pdpt: [0; 512],
        pd: [0; 512],
    };
    tables.pml4[0] = PDPT_ADDR | flags;
    tables.pdpt[0] = PD_ADDR | flags;
    tables.pd[0] = flags | PTE_LARGE;
    tables
}

/// Serialises a page-table page as the little-endian bytes the CPU reads.
pub fn table_bytes(table: &TablePage) -> Vec<u8> {
    table.iter().flat_map(|entry| entry.to_le_bytes()).collect()
}

/// Encodes a code/data segment descriptor.
///
/// `access` is byte 5 (P, DPL, S, type); `flags` is the high nibble of
/// byte 6 (G, D/B, L, AVL).
pub const fn segment_descriptor(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    let base = base as u64;
    let limit = limit as u64;
    (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | ((access as u64) << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((flags as u64) & 0xf) << 52)
        | (((base >> 24) & 0xff) << 56)
}

/// Encodes a 16-byte 64-bit system descriptor (TSS) as two GDT slots.
pub const fn system_descriptor(base: u64, limit: u32, access: u8) -> [u64; 2] {
    let low = segment_descriptor(base as u32, limit, access, 0);
    [low, base >> 32]
}

/// Access byte: present, DPL 0, code, execute/read.
const ACCESS_KERNEL_CODE: u8 = 0x9a;
/// Access byte: present, DPL 0, data, read/write.
const ACCESS_KERNEL_DATA: u8 = 0x92;
/// Access byte: present, DPL 3, data, read/write.
const ACCESS_USER_DATA: u8 = 0xf2;
/// Access byte: present, DPL 3, code, execute/read.
const ACCESS_USER_CODE: u8 = 0xfa;
/// Access byte: present, DPL 0, system, available 64-bit TSS.
const ACCESS_TSS: u8 = 0x89;
/// Flags nibble: 4 KiB granularity, 64-bit code.
const FLAGS_CODE64: u8 = 0xa;
/// Flags nibble: 4 KiB granularity, 32-bit default size.
const FLAGS_DATA: u8 = 0xc;

/// Builds the GDT: null, kernel code 0x08, kernel data 0x10, user data
/// 0x18 (0x1b with RPL 3), user code 0x20 (0x23), TSS 0x28.
///
/// The order satisfies `syscall`/`sysret`: with STAR[47:32] = 0x08 syscall
/// loads CS 0x08 and SS 0x10; with STAR[63:48] = 0x10 a 64-bit sysret loads
/// SS 0x18|3 and CS 0x20|3.
pub fn build_gdt() -> [u64; 7] {
    let [tss_low, tss_high] = system_descriptor(TSS_ADDR, TSS_SIZE as u32 - 1, ACCESS_TSS);
    [
        0,
        segment_descriptor(0, 0xfffff, ACCESS_KERNEL_CODE, FLAGS_CODE64),
        segment_descriptor(0, 0xfffff, ACCESS_KERNEL_DATA, FLAGS_DATA),
        segment_descriptor(0, 0xfffff, ACCESS_USER_DATA, FLAGS_DATA),
        segment_descriptor(0, 0xfffff, ACCESS_USER_CODE, FLAGS_CODE64),
        tss_low,
        tss_high,
    ]
}

/// Serialises GDT entries as the little-endian bytes the CPU reads.
pub fn gdt_bytes(gdt: &[u64]) -> Vec<u8> {
    gdt.iter().flat_map(|entry| entry.to_le_bytes()).collect()
}

/// Builds a 64-bit TSS with no I/O permission bitmap: the bitmap offset
/// (bytes 0x66..0x68) points at the TSS limit + 1, so every port access at
/// CPL > IOPL raises #GP.
pub fn build_tss() -> [u8; TSS_SIZE] {
    let mut tss = [0u8; TSS_SIZE];
    tss[0x66..0x68].copy_from_slice(&(TSS_SIZE as u16).to_le_bytes());
    tss
}

/// Decodes a GDT descriptor into the `kvm_segment` KVM expects in
/// `kvm_sregs`, so the registers loaded by `set_sregs` match what the CPU
/// would load from the table itself.
pub fn kvm_segment_from_gdt(entry: u64, selector: u16) -> kvm_segment {
    let field = |shift: u32, bits: u32| ((entry >> shift) & ((1 << bits) - 1)) as u8;
    let raw_limit = ((entry & 0xffff) | ((entry >> 32) & 0xf_0000)) as u32;
    let granular = field(55, 1);
    kvm_segment {
        base: ((entry >> 16) & 0xff_ffff) | (((entry >> 56) & 0xff) << 24),
        limit: if granular == 1 {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        },
        selector,
        type_: field(40, 4),
        s: field(44, 1),
        dpl: field(45, 2),
        present: field(47, 1),
        avl: field(52, 1),
        l: field(53, 1),
        db: field(54, 1),
        g: granular,
        unusable: u8::from(field(47, 1) == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tables_identity_map_first_2mib_for_user() {
        let t = build_page_tables();
        let user = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
        assert_eq!(t.pml4[0], PDPT_ADDR | user);
        assert_eq!(t.pdpt[0], PD_ADDR | user);
        assert_eq!(t.pd[0], user | PTE_LARGE, "2 MiB page at physical 0");
        assert!(t.pml4[1..].iter().all(|e| *e == 0));
        assert!(t.pdpt[1..].iter().all(|e| *e == 0));
        assert!(t.pd[1..].iter().all(|e| *e == 0));
        let bytes = table_bytes(&t.pml4);
        assert_eq!(bytes.len(), 4096);
        assert_eq!(bytes[..8], (PDPT_ADDR | user).to_le_bytes());
    }

    #[test]
    fn tables_and_code_fit_in_memory_without_overlap() {
        let mut regions = [
            (GDT_ADDR, 7 * 8),
            (TSS_ADDR, TSS_SIZE as u64),
            (PML4_ADDR, 4096),
            (PDPT_ADDR, 4096),
            (PD_ADDR, 4096),
            (RING0_CODE_ADDR, 4096),
            (USER_CODE_ADDR, 4096),
            (SYSCALL_HANDLER_ADDR, 4096),
            (KERNEL_STACK_TOP - 4096, 4096),
            (USER_STACK_TOP - 4096, 4096),
        ];
        regions.sort_unstable();
        for pair in regions.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
        }
        let last = regions[regions.len() - 1];
        assert!(last.0 + last.1 <= MEM_SIZE as u64);
    }

    #[test]
    fn gdt_has_the_well_known_flat_descriptors() {
        let gdt = build_gdt();
        assert_eq!(gdt[0], 0);
        assert_eq!(gdt[1], 0x00af_9a00_0000_ffff, "kernel code");
        assert_eq!(gdt[2], 0x00cf_9200_0000_ffff, "kernel data");
        assert_eq!(gdt[3], 0x00cf_f200_0000_ffff, "user data");
        assert_eq!(gdt[4], 0x00af_fa00_0000_ffff, "user code");
        assert_eq!(gdt[5], 0x0000_8900_0600_0067, "TSS low");
        assert_eq!(gdt[6], 0, "TSS high (base >> 32)");
        assert_eq!(gdt_bytes(&gdt).len(), 56);
    }

    #[test]
    fn selectors_index_the_gdt_with_the_right_dpl() {
        let gdt = build_gdt();
        for (selector, dpl, code) in [
            (KERNEL_CS, 0, true),
            (KERNEL_DS, 0, false),
            (USER_DS, 3, false),
            (USER_CS, 3, true),
        ] {
            let seg = kvm_segment_from_gdt(gdt[usize::from(selector >> 3)], selector);
            assert_eq!(seg.dpl, dpl, "selector {selector:#x}");
            assert_eq!(u16::from(seg.dpl), selector & 3, "RPL == DPL");
            assert_eq!(seg.type_ & 0x8 != 0, code, "selector {selector:#x}");
            assert_eq!(seg.l, u8::from(code));
            assert_eq!(seg.present, 1);
            assert_eq!(seg.unusable, 0);
            assert_eq!(seg.limit, 0xffff_ffff);
        }
    }

    #[test]
    fn syscall_sysret_selector_arithmetic_matches_the_gdt() {
        // syscall: CS = STAR[47:32], SS = +8; sysret (64-bit): SS = STAR[63:48] + 8,
        // CS = STAR[63:48] + 16, both with RPL 3.
        let sysret_base = KERNEL_DS;
        assert_eq!(KERNEL_CS + 8, KERNEL_DS);
        assert_eq!((sysret_base + 8) | 3, USER_DS);
        assert_eq!((sysret_base + 16) | 3, USER_CS);
    }

    #[test]
    fn tss_descriptor_decodes_and_has_no_io_bitmap() {
        let gdt = build_gdt();
        let seg = kvm_segment_from_gdt(gdt[usize::from(TSS_SELECTOR >> 3)], TSS_SELECTOR);
        assert_eq!(seg.base, TSS_ADDR);
        assert_eq!(seg.limit, TSS_SIZE as u32 - 1);
        assert_eq!((seg.type_, seg.s, seg.present, seg.g), (9, 0, 1, 0));
        let tss = build_tss();
        assert_eq!(u16::from_le_bytes([tss[0x66], tss[0x67]]), TSS_SIZE as u16);
    }

    #[test]
    fn descriptor_encoding_round_trips_base_and_limit() {
        let entry = segment_descriptor(0x1234_5678, 0x9_abcd, 0x92, 0x4);
        let seg = kvm_segment_from_gdt(entry, 0x10);
        assert_eq!(seg.base, 0x1234_5678);
        assert_eq!(seg.limit, 0x9_abcd);
        assert_eq!((seg.g, seg.db, seg.l, seg.present), (0, 1, 0, 1));
        let not_present = kvm_segment_from_gdt(segment_descriptor(0, 0, 0x12, 0), 0);
        assert_eq!(not_present.unusable, 1);
    }
}
