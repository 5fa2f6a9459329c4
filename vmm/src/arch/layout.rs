//! Guest-physical memory layout of a podvm microVM (x86_64).
//!
//! The low addresses follow Firecracker's well-known layout so that guests
//! and tools built for it find things where they expect them.

/// Global descriptor table used at boot.
pub const BOOT_GDT_ADDR: u64 = 0x500;
/// Interrupt descriptor table used at boot (empty: the kernel loads its own).
pub const BOOT_IDT_ADDR: u64 = 0x520;
/// Initial stack pointer of the boot vCPU (stack grows down from here).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// The Linux "zero page" (`struct boot_params`), passed in `rsi`.
pub const ZERO_PAGE_ADDR: u64 = 0x7000;
/// PVH: the `hvm_start_info` structure, passed in `ebx`.
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH: the module list (the initrd), right after `hvm_start_info`.
pub const PVH_MODLIST_START: u64 = 0x6040;
/// PVH: the memory map; the zero page's place, unused under PVH.
pub const PVH_MEMMAP_START: u64 = 0x7000;
/// PVH: memory-map entries (24 bytes each) that fit in its page.
pub const PVH_MEMMAP_MAX_ENTRIES: usize = 4096 / 24;
/// Page-map level 4 of the boot identity map (CR3).
pub const PML4_ADDR: u64 = 0x9000;
/// Page-directory-pointer table of the boot identity map.
pub const PDPTE_ADDR: u64 = 0xa000;
/// Page directory of the boot identity map (512 × 2 MiB pages = 1 GiB).
pub const PDE_ADDR: u64 = 0xb000;
/// Kernel command line.
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line, NUL included (`COMMAND_LINE_SIZE` in
/// arch/x86/include/asm/setup.h).
pub const CMDLINE_MAX_SIZE: usize = 2048;
/// Start of the Extended BIOS Data Area: low RAM reported by e820 ends here.
pub const EBDA_START: u64 = 0x9_fc00;
/// The MP table (floating pointer, then the configuration table), in the
/// BIOS area Linux scans (0xF0000..0x100000), which e820 does not list as RAM.
pub const MPTABLE_START: u64 = 0xf_0000;
/// Where the IOAPIC's registers are (the MP table says so).
pub const IOAPIC_ADDR: u64 = 0xfec0_0000;
/// Where each local APIC's registers are.
pub const LAPIC_ADDR: u64 = 0xfee0_0000;
/// Start of "high" memory: kernels are loaded at or above 1 MiB.
pub const HIMEM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole (3 GiB); no RAM between here and 4 GiB.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO hole (4 GiB): RAM beyond the hole continues here.
pub const MMIO_GAP_END: u64 = 1 << 32;
/// First virtio-mmio device window; each device gets [`MMIO_DEVICE_SIZE`].
pub const MMIO_DEVICES_START: u64 = 0xd000_0000;
/// Size of one virtio-mmio device window (4 KiB).
pub const MMIO_DEVICE_SIZE: u64 = 0x1000;
/// Address KVM uses for the TSS of real-mode emulation (3 pages), as in
/// Firecracker: just below the 4 GiB boundary, inside the MMIO hole.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;

/// e820 type of usable RAM (`E820_TYPE_RAM` in arch/x86/include/asm/e820/types.h).
pub const E820_RAM: u32 = 1;

/// One guest RAM range: start address and length in bytes.
pub type RamRange = (u64, u64);

/// The guest RAM ranges for `mem_size` bytes of memory: below the MMIO
/// hole first, the rest above 4 GiB.
pub fn ram_ranges(mem_size: u64) -> Vec<RamRange> {
    if mem_size <= MMIO_GAP_START {
        vec![(0, mem_size)]
    } else {
        vec![
            (0, MMIO_GAP_START),
            (MMIO_GAP_END, mem_size - MMIO_GAP_START),
        ]
    }
}

/// The e820 map: `(start, length)` RAM entries for `mem_size` bytes.
///
/// The first 640 KiB minus the EBDA, then 1 MiB up to the end of low
/// memory, then any memory above the MMIO hole.
pub fn e820_ram_entries(mem_size: u64) -> Vec<RamRange> {
    let mut entries = vec![(0, EBDA_START)];
    for (start, len) in ram_ranges(mem_size) {
        let start_ = start.max(HIMEM_START);
        let end = start + len;
        if end > start_ {
            entries.push((start_, end - start_));
        }
    }
    entries
}

/// The end of guest RAM below the MMIO hole.
pub fn low_ram_end(mem_size: u64) -> u64 {
    mem_size.min(MMIO_GAP_START)
}

// The layout's fixed relations, checked at compile time: the command line
// ends below the EBDA; device windows and KVM's TSS lie in the MMIO hole.
const _: () = {
    assert!(CMDLINE_ADDR + CMDLINE_MAX_SIZE as u64 <= EBDA_START);
    assert!(MMIO_DEVICES_START >= MMIO_GAP_START);
    assert!(KVM_TSS_ADDR + 3 * 4096 <= MMIO_GAP_END);
    assert!(KVM_TSS_ADDR > MMIO_DEVICES_START + 64 * MMIO_DEVICE_SIZE);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_structures_do_not_overlap() {
        let mut regions = [
            (BOOT_GDT_ADDR, 4 * 8),
            (BOOT_IDT_ADDR, 8),
            (PVH_INFO_START, PVH_MODLIST_START - PVH_INFO_START),
            (PVH_MODLIST_START, 32),
            (ZERO_PAGE_ADDR, 4096),
            (BOOT_STACK_POINTER - 0xff0, 0x1000),
            (PML4_ADDR, 4096),
            (PDPTE_ADDR, 4096),
            (PDE_ADDR, 4096),
            (CMDLINE_ADDR, CMDLINE_MAX_SIZE as u64),
        ];
        regions.sort_unstable();
        for pair in regions.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
        }
    }

    #[test]
    fn small_memory_is_one_range_and_two_e820_entries() {
        assert_eq!(ram_ranges(128 << 20), vec![(0, 128 << 20)]);
        assert_eq!(
            e820_ram_entries(128 << 20),
            vec![(0, EBDA_START), (HIMEM_START, (128 << 20) - HIMEM_START)]
        );
        assert_eq!(low_ram_end(128 << 20), 128 << 20);
    }

    #[test]
    fn large_memory_skips_the_mmio_hole() {
        let mem = 4u64 << 30;
        assert_eq!(
            ram_ranges(mem),
            vec![(0, MMIO_GAP_START), (MMIO_GAP_END, mem - MMIO_GAP_START)]
        );
        let e820 = e820_ram_entries(mem);
        assert_eq!(e820.len(), 3);
        assert_eq!(e820[2], (MMIO_GAP_END, 1 << 30));
        let total: u64 = ram_ranges(mem).iter().map(|r| r.1).sum();
        assert_eq!(total, mem);
        assert_eq!(low_ram_end(mem), MMIO_GAP_START);
    }
}
