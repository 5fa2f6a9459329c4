//! Wraps the no_std test guest's ELF in a minimal bzImage, so the VMM's
//! bzImage path (setup header, `code32_start`, the 64-bit entry at +0x200,
//! the header copied into the zero page) runs with a guest that checks
//! what it was handed. A real kernel's bzImage would first decompress
//! itself, which this project's software-emulated KVM takes minutes for.
//!
//! Layout (Documentation/arch/x86/boot.rst): 4 setup sectors after the
//! boot sector, then the protected-mode part loaded at `code32_start`;
//! 0x200 bytes of it come before the 64-bit entry, which is where the
//! guest's ELF starts (its lowest loaded address).

/// Setup sectors after the boot sector.
const SETUP_SECTS: u8 = 4;
/// The 64-bit entry's offset in the protected-mode part.
const ENTRY_64: usize = 0x200;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The PT_LOAD segments of an ELF64 image laid out flat from the lowest
/// address: (that address, the bytes).
fn flatten(elf: &[u8]) -> (u64, Vec<u8>) {
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF image");
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20) as usize,
        usize::from(u16_at(elf, 0x36)),
        usize::from(u16_at(elf, 0x38)),
    );
    let loads: Vec<(u64, usize, usize)> = (0..phnum)
        .map(|i| &elf[phoff + i * phentsize..])
        .filter(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == 1)
        .map(|ph| {
            (
                u64_at(ph, 16),
                u64_at(ph, 8) as usize,
                u64_at(ph, 32) as usize,
            )
        })
        .collect();
    let base = loads.iter().map(|l| l.0).min().expect("PT_LOAD segments");
    let mut flat = Vec::new();
    for (vaddr, offset, filesz) in loads {
        let at = (vaddr - base) as usize;
        if flat.len() < at + filesz {
            flat.resize(at + filesz, 0);
        }
        flat[at..at + filesz].copy_from_slice(&elf[offset..offset + filesz]);
    }
    (base, flat)
}

/// A bzImage whose 64-bit entry is the ELF's lowest loaded address (the
/// test guest's `_start`), with setup header `version`.
pub fn from_elf(elf: &[u8], version: u16) -> Vec<u8> {
    let (base, flat) = flatten(elf);
    let setup_len = (usize::from(SETUP_SECTS) + 1) * 512;
    let mut image = vec![0u8; setup_len + ENTRY_64];
    image[0x1f1] = SETUP_SECTS;
    image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    // loadflags: LOADED_HIGH.
    image[0x211] = 0x01;
    let code32_start = u32::try_from(base - ENTRY_64 as u64).expect("below 4 GiB");
    image[0x214..0x218].copy_from_slice(&code32_start.to_le_bytes());
    // initrd_addr_max, kernel_alignment (2 MiB), cmdline_size.
    image[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    image[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    image[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    // xloadflags: XLF_KERNEL_64 (the 64-bit entry at +0x200).
    image[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
    image.extend_from_slice(&flat);
    image
}
