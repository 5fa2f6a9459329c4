//! The Linux zero page (`struct boot_params`): setup header, command line
//! pointer, initrd and the e820 memory map.
//!
//! Field meanings: Documentation/arch/x86/boot.rst and
//! arch/x86/include/uapi/asm/bootparam.h.

use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{Error, Result};
use crate::arch::layout::{e820_ram_entries, CMDLINE_ADDR, E820_RAM, ZERO_PAGE_ADDR};

/// `boot_flag` value: the 0xAA55 boot-sector signature.
pub const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// `header` value: "HdrS".
pub const KERNEL_HDR_MAGIC: u32 = 0x5372_6448;
/// `type_of_loader`: 0xff, "undefined" boot loader.
pub const KERNEL_LOADER_OTHER: u8 = 0xff;
/// `kernel_alignment` for images without a setup header: 16 MiB.
pub const KERNEL_MIN_ALIGNMENT_BYTES: u32 = 0x100_0000;

/// Everything the zero page describes.
#[derive(Debug, Clone, Copy)]
pub struct ZeroPageSpec {
    /// The bzImage's own setup header, when there is one.
    pub setup_header: Option<setup_header>,
    /// Length of the command line, without its NUL.
    pub cmdline_len: usize,
    /// Guest-physical address and size of the initrd.
    pub initrd: Option<(u64, u64)>,
    /// Guest memory size in bytes.
    pub mem_size: u64,
}

/// Builds the zero page.
pub fn build_boot_params(spec: &ZeroPageSpec) -> Result<boot_params> {
    let mut params = boot_params::default();
    if let Some(header) = spec.setup_header {
        params.hdr = header;
    } else {
        params.hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT_BYTES;
    }
    params.hdr.type_of_loader = KERNEL_LOADER_OTHER;
    params.hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    params.hdr.header = KERNEL_HDR_MAGIC;
    params.hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    params.hdr.cmdline_size = spec.cmdline_len as u32;
    if let Some((addr, size)) = spec.initrd {
        params.hdr.ramdisk_image = u32::try_from(addr).map_err(|_| Error::InitrdPlacement)?;
        params.hdr.ramdisk_size = u32::try_from(size).map_err(|_| Error::InitrdPlacement)?;
    }
    let entries = e820_ram_entries(spec.mem_size);
    if entries.len() > params.e820_table.len() {
        return Err(Error::E820TooLarge(entries.len()));
    }
    for (slot, (addr, size)) in params.e820_table.iter_mut().zip(&entries) {
        *slot = boot_e820_entry {
            addr: *addr,
            size: *size,
            r#type: E820_RAM,
        };
    }
    params.e820_entries = entries.len() as u8;
    Ok(params)
}

/// Writes the zero page at [`ZERO_PAGE_ADDR`].
pub fn write_boot_params(memory: &GuestMemoryMmap, params: &boot_params) -> Result<()> {
    memory
        .write_obj(*params, GuestAddress(ZERO_PAGE_ADDR))
        .map_err(Error::WriteZeroPage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::layout::{EBDA_START, HIMEM_START};

    #[test]
    fn elf_zero_page_has_magic_cmdline_initrd_and_e820() -> Result<()> {
        let params = build_boot_params(&ZeroPageSpec {
            setup_header: None,
            cmdline_len: 42,
            initrd: Some((0x7f0_0000, 0x1234)),
            mem_size: 128 << 20,
        })?;
        let hdr = params.hdr;
        assert_eq!({ hdr.boot_flag }, 0xaa55);
        assert_eq!({ hdr.header }, 0x5372_6448);
        assert_eq!({ hdr.type_of_loader }, 0xff);
        assert_eq!({ hdr.cmd_line_ptr }, 0x20000);
        assert_eq!({ hdr.cmdline_size }, 42);
        assert_eq!({ hdr.ramdisk_image }, 0x7f0_0000);
        assert_eq!({ hdr.ramdisk_size }, 0x1234);
        assert_eq!({ hdr.kernel_alignment }, 0x100_0000);
        assert_eq!(params.e820_entries, 2);
        let e0 = params.e820_table[0];
        let e1 = params.e820_table[1];
        assert_eq!(
            ({ e0.addr }, { e0.size }, { e0.r#type }),
            (0, EBDA_START, 1)
        );
        assert_eq!(
            ({ e1.addr }, { e1.size }),
            (HIMEM_START, (128 << 20) - HIMEM_START)
        );
        Ok(())
    }

    #[test]
    fn bzimage_header_is_kept_and_completed() -> Result<()> {
        let header = setup_header {
            version: 0x020f,
            kernel_alignment: 0x20_0000,
            ..Default::default()
        };
        let params = build_boot_params(&ZeroPageSpec {
            setup_header: Some(header),
            cmdline_len: 0,
            initrd: None,
            mem_size: 5 << 30,
        })?;
        assert_eq!({ params.hdr.version }, 0x020f);
        assert_eq!({ params.hdr.kernel_alignment }, 0x20_0000);
        assert_eq!({ params.hdr.ramdisk_image }, 0);
        assert_eq!(params.e820_entries, 3);
        Ok(())
    }

    #[test]
    fn initrd_above_4gib_is_refused() {
        let result = build_boot_params(&ZeroPageSpec {
            setup_header: None,
            cmdline_len: 0,
            initrd: Some((1 << 32, 1)),
            mem_size: 8 << 30,
        });
        assert!(matches!(result, Err(Error::InitrdPlacement)));
    }
}
