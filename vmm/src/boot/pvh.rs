//! The PVH boot protocol's start-of-day structures: `hvm_start_info`, its
//! memory map and the module list (the initrd).
//!
//! A kernel whose ELF carries `XEN_ELFNOTE_PHYS32_ENTRY` is entered at that
//! address in 32-bit protected mode, paging off, with `ebx` pointing at
//! `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h and
//! Documentation/x86/boot.rst's PVH notes). Addresses follow Firecracker.

use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info, XEN_HVM_START_MAGIC_VALUE,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{Error, Result};
use crate::arch::layout::{
    e820_ram_entries, CMDLINE_ADDR, E820_RAM, PVH_INFO_START, PVH_MEMMAP_MAX_ENTRIES,
    PVH_MEMMAP_START, PVH_MODLIST_START,
};

/// `hvm_start_info.version` written: 1 adds the memory map.
pub const START_INFO_VERSION: u32 = 1;

/// Everything `hvm_start_info` describes.
#[derive(Debug, Clone, Copy)]
pub struct StartInfoSpec {
    /// Guest-physical address and size of the initrd (module 0).
    pub initrd: Option<(u64, u64)>,
    /// Guest memory size in bytes.
    pub mem_size: u64,
}

/// The start info, its memory map and its module list, not yet written.
#[derive(Debug, Clone)]
pub struct StartInfo {
    /// The structure `ebx` points at.
    pub info: hvm_start_info,
    /// RAM ranges, as e820 would give them.
    pub memmap: Vec<hvm_memmap_table_entry>,
    /// The initrd, if any.
    pub modules: Vec<hvm_modlist_entry>,
}

/// Builds the PVH start info for `spec`.
pub fn build_start_info(spec: &StartInfoSpec) -> Result<StartInfo> {
    let memmap: Vec<hvm_memmap_table_entry> = e820_ram_entries(spec.mem_size)
        .into_iter()
        .map(|(addr, size)| hvm_memmap_table_entry {
            addr,
            size,
            type_: E820_RAM,
            reserved: 0,
        })
        .collect();
    if memmap.len() > PVH_MEMMAP_MAX_ENTRIES {
        return Err(Error::E820TooLarge(memmap.len()));
    }
    let modules: Vec<hvm_modlist_entry> = spec
        .initrd
        .map(|(paddr, size)| hvm_modlist_entry {
            paddr,
            size,
            cmdline_paddr: 0,
            reserved: 0,
        })
        .into_iter()
        .collect();
    let info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: START_INFO_VERSION,
        flags: 0,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            PVH_MODLIST_START
        },
        cmdline_paddr: CMDLINE_ADDR,
        rsdp_paddr: 0,
        memmap_paddr: PVH_MEMMAP_START,
        memmap_entries: memmap.len() as u32,
        reserved: 0,
    };
    Ok(StartInfo {
        info,
        memmap,
        modules,
    })
}

/// Writes the start info at [`PVH_INFO_START`], its module list and its
/// memory map.
pub fn write_start_info(memory: &GuestMemoryMmap, start: &StartInfo) -> Result<()> {
    memory
        .write_obj(start.info, GuestAddress(PVH_INFO_START))
        .map_err(Error::WriteStartInfo)?;
    for (addr, module) in (PVH_MODLIST_START..)
        .step_by(std::mem::size_of::<hvm_modlist_entry>())
        .zip(&start.modules)
    {
        memory
            .write_obj(*module, GuestAddress(addr))
            .map_err(Error::WriteStartInfo)?;
    }
    for (addr, entry) in (PVH_MEMMAP_START..)
        .step_by(std::mem::size_of::<hvm_memmap_table_entry>())
        .zip(&start.memmap)
    {
        memory
            .write_obj(*entry, GuestAddress(addr))
            .map_err(Error::WriteStartInfo)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::layout::{EBDA_START, HIMEM_START};

    #[test]
    fn start_info_has_magic_cmdline_memmap_and_initrd() -> Result<()> {
        let start = build_start_info(&StartInfoSpec {
            initrd: Some((0x7f0_0000, 0x1234)),
            mem_size: 128 << 20,
        })?;
        let info = start.info;
        assert_eq!(info.magic, 0x336e_c578);
        assert_eq!(info.version, 1);
        assert_eq!(info.cmdline_paddr, CMDLINE_ADDR);
        assert_eq!(
            (info.nr_modules, info.modlist_paddr),
            (1, PVH_MODLIST_START)
        );
        assert_eq!(
            (info.memmap_entries, info.memmap_paddr),
            (2, PVH_MEMMAP_START)
        );
        assert_eq!(
            (
                start.memmap[0].addr,
                start.memmap[0].size,
                start.memmap[0].type_
            ),
            (0, EBDA_START, 1)
        );
        assert_eq!(
            (start.memmap[1].addr, start.memmap[1].size),
            (HIMEM_START, (128 << 20) - HIMEM_START)
        );
        assert_eq!(
            (start.modules[0].paddr, start.modules[0].size),
            (0x7f0_0000, 0x1234)
        );
        Ok(())
    }

    #[test]
    fn no_initrd_means_no_modules() -> Result<()> {
        let start = build_start_info(&StartInfoSpec {
            initrd: None,
            mem_size: 5 << 30,
        })?;
        assert_eq!((start.info.nr_modules, start.info.modlist_paddr), (0, 0));
        assert_eq!(start.info.memmap_entries, 3);
        Ok(())
    }

    #[test]
    fn start_info_lands_in_guest_memory() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)])?;
        let start = build_start_info(&StartInfoSpec {
            initrd: Some((0x8_0000, 16)),
            mem_size: 1 << 20,
        })?;
        write_start_info(&mem, &start)?;
        let info: hvm_start_info = mem.read_obj(GuestAddress(PVH_INFO_START))?;
        assert_eq!(info, start.info);
        let module: hvm_modlist_entry = mem.read_obj(GuestAddress(PVH_MODLIST_START))?;
        assert_eq!(module.paddr, 0x8_0000);
        let last: hvm_memmap_table_entry = mem.read_obj(GuestAddress(
            PVH_MEMMAP_START + 24 * (start.memmap.len() as u64 - 1),
        ))?;
        assert_eq!(last, start.memmap[start.memmap.len() - 1]);
        Ok(())
    }
}
