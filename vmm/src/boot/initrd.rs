//! Initrd placement: as high in low memory as it fits, page-aligned, above
//! the kernel and below the kernel's `initrd_addr_max`.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{Error, Result};
use crate::arch::layout::low_ram_end;

/// Page size the initrd start is aligned to.
const PAGE_SIZE: u64 = 4096;

/// Where an initrd of `size` bytes goes: the highest page-aligned address
/// with `addr + size <= min(low RAM end, addr_max + 1)` and `addr >= kernel_end`.
pub fn initrd_address(
    mem_size: u64,
    kernel_end: u64,
    addr_max: Option<u64>,
    size: u64,
) -> Result<u64> {
    let mut top = low_ram_end(mem_size);
    if let Some(max) = addr_max {
        top = top.min(max.saturating_add(1));
    }
    let start = top.checked_sub(size).ok_or(Error::InitrdTooLarge(size))? & !(PAGE_SIZE - 1);
    if start < kernel_end {
        return Err(Error::InitrdTooLarge(size));
    }
    Ok(start)
}

/// Copies the whole of `file` into guest memory at `addr`.
pub fn load_initrd(memory: &GuestMemoryMmap, file: &mut File, addr: u64, size: u64) -> Result<()> {
    file.seek(SeekFrom::Start(0)).map_err(Error::ReadInitrd)?;
    let len = usize::try_from(size).map_err(|_| Error::InitrdTooLarge(size))?;
    memory
        .read_exact_volatile_from(GuestAddress(addr), file, len)
        .map_err(Error::WriteInitrd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_goes_to_the_top_of_low_memory() -> Result<()> {
        let mem = 128u64 << 20;
        assert_eq!(initrd_address(mem, 0x20_0000, None, 0x1000)?, mem - 0x1000);
        assert_eq!(initrd_address(mem, 0x20_0000, None, 0x1001)?, mem - 0x2000);
        assert_eq!(
            initrd_address(mem, 0x20_0000, Some(0x37ff_ffff), 10)?,
            mem - 0x1000
        );
        assert_eq!(
            initrd_address(mem, 0x20_0000, Some(0x3f_ffff), 10)?,
            0x3f_f000
        );
        Ok(())
    }

    #[test]
    fn initrd_overlapping_the_kernel_is_refused() {
        let mem = 16u64 << 20;
        assert!(initrd_address(mem, 0x80_0000, None, 9 << 20).is_err());
        assert!(initrd_address(mem, 0, None, 17 << 20).is_err());
    }
}
