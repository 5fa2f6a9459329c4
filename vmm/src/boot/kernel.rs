//! Kernel image loading: a vmlinux ELF or a bzImage, into guest memory at
//! or above 1 MiB, through linux-loader.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::{BzImage, Elf, KernelLoader, PvhBootCapability};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::{Error, Result};
use crate::arch::layout::HIMEM_START;

/// The ELF magic number.
const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
/// Offset of the 64-bit entry point from a bzImage's protected-mode load
/// address (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL").
pub const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// `XLF_KERNEL_64` in the setup header's `xloadflags`: the kernel has the
/// 64-bit entry point at +0x200 (arch/x86/include/uapi/asm/bootparam.h).
pub const XLF_KERNEL_64: u16 = 1 << 0;

/// The format of a kernel image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    /// An uncompressed vmlinux ELF.
    Elf,
    /// A compressed bzImage.
    BzImage,
}

/// A kernel loaded into guest memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// The image's format.
    pub format: KernelFormat,
    /// The 64-bit entry point (guest-physical).
    pub entry: u64,
    /// First guest-physical address past the loaded image.
    pub end: u64,
    /// The bzImage's setup header, to be copied into the zero page.
    pub setup_header: Option<setup_header>,
    /// The 32-bit PVH entry point, when the ELF carries a
    /// `XEN_ELFNOTE_PHYS32_ENTRY` note; the VMM then boots through PVH.
    pub pvh_entry: Option<u64>,
}

/// Tells the image format from its first bytes.
pub fn detect_format(file: &mut File) -> Result<KernelFormat> {
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut magic))
        .map_err(Error::ReadKernel)?;
    Ok(if magic == ELF_MAGIC {
        KernelFormat::Elf
    } else {
        KernelFormat::BzImage
    })
}

/// Loads `file` into `memory` and returns where to enter it.
pub fn load_kernel(memory: &GuestMemoryMmap, file: &mut File) -> Result<LoadedKernel> {
    let highmem = Some(GuestAddress(HIMEM_START));
    match detect_format(file)? {
        KernelFormat::Elf => {
            let loaded = Elf::load(memory, None, file, highmem).map_err(Error::LoadKernel)?;
            Ok(LoadedKernel {
                format: KernelFormat::Elf,
                entry: loaded.kernel_load.0,
                end: loaded.kernel_end,
                setup_header: None,
                pvh_entry: match loaded.pvh_boot_cap {
                    PvhBootCapability::PvhEntryPresent(addr) => Some(addr.0),
                    _ => None,
                },
            })
        }
        KernelFormat::BzImage => {
            let size = file.seek(SeekFrom::End(0)).map_err(Error::ReadKernel)?;
            let loaded = BzImage::load(memory, None, file, highmem).map_err(Error::LoadKernel)?;
            let header = loaded
                .setup_header
                .ok_or(Error::NotBootable("bzImage without a setup header".into()))?;
            if header.xloadflags & XLF_KERNEL_64 == 0 {
                return Err(Error::NotBootable(
                    "bzImage has no 64-bit entry point (XLF_KERNEL_64 unset)".into(),
                ));
            }
            let start = loaded.kernel_load.0;
            Ok(LoadedKernel {
                format: KernelFormat::BzImage,
                entry: start + BZIMAGE_64BIT_ENTRY_OFFSET,
                end: start.saturating_add(size),
                setup_header: Some(header),
                pvh_entry: None,
            })
        }
    }
}
