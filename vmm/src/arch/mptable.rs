//! The Intel MultiProcessor Specification (1.4) table, which tells a guest
//! without ACPI how many CPUs it has, where the IOAPIC is and how the ISA
//! interrupts reach it. Linux (`CONFIG_X86_MPPARSE`) finds the floating
//! pointer by scanning 0xF0000..0x100000 and brings up one CPU per
//! processor entry; without the table it runs on the boot CPU only.
//!
//! Entries as Firecracker writes them: one processor per vCPU (LAPIC ID =
//! vCPU index, the first the BSP), an ISA bus, the IOAPIC (ID after the
//! CPUs), one I/O interrupt per IOAPIC pin (ISA IRQ n → pin n), ExtINT on
//! LINT0 and NMI on LINT1. Multi-byte fields are little-endian.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{IOAPIC_ADDR, LAPIC_ADDR, MPTABLE_START};

/// Errors writing the table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// More vCPUs than LAPIC IDs the table can give (the IOAPIC takes the
    /// next one).
    #[error("{0} vCPUs do not fit in an MP table")]
    TooManyCpus(u8),
    /// The table could not be written to guest memory.
    #[error("cannot write the MP table: {0}")]
    Write(#[source] vm_memory::GuestMemoryError),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// IOAPIC pins, each with an I/O interrupt entry.
pub const IOAPIC_PINS: u8 = 24;
/// Spec revision 1.4.
const SPEC_REV: u8 = 4;
/// LAPIC version (integrated APIC).
const LAPIC_VERSION: u8 = 0x14;
/// IOAPIC version.
const IOAPIC_VERSION: u8 = 0x11;
/// Processor entry flags.
const CPU_ENABLED: u8 = 1;
const CPU_BSP: u8 = 2;
/// CPU signature (family 6) and feature flags (FPU, APIC) in processor
/// entries; Linux takes the real ones from CPUID.
const CPU_SIGNATURE: u32 = 6 << 8;
const CPU_FEATURES: u32 = 1 | (1 << 9);
/// Entry types.
const ENTRY_PROCESSOR: u8 = 0;
const ENTRY_BUS: u8 = 1;
const ENTRY_IOAPIC: u8 = 2;
const ENTRY_IO_INTERRUPT: u8 = 3;
const ENTRY_LOCAL_INTERRUPT: u8 = 4;
/// Interrupt types.
const INT_VECTORED: u8 = 0;
const INT_NMI: u8 = 1;
const INT_EXTINT: u8 = 3;
/// Floating pointer size (16 bytes) and configuration table header size.
const FLOATING_POINTER_LEN: usize = 16;
const HEADER_LEN: usize = 44;

/// The sum of `bytes`, which a valid table makes 0.
fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b))
}

/// The IOAPIC's ID: the first after the vCPUs' LAPIC IDs.
pub fn ioapic_id(vcpus: u8) -> u8 {
    vcpus
}

/// The floating pointer followed by the configuration table, for a table
/// placed at `start`.
pub fn build(vcpus: u8, start: u64) -> Result<Vec<u8>> {
    // LAPIC IDs are 0..vcpus and the IOAPIC takes `vcpus`: all below 255.
    if vcpus == 0 || vcpus == u8::MAX {
        return Err(Error::TooManyCpus(vcpus));
    }
    let ioapic = ioapic_id(vcpus);
    let mut entries = Vec::new();
    let mut count: u16 = 0;
    for id in 0..vcpus {
        let flags = CPU_ENABLED | if id == 0 { CPU_BSP } else { 0 };
        entries.extend_from_slice(&[ENTRY_PROCESSOR, id, LAPIC_VERSION, flags]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    entries.extend_from_slice(&[ENTRY_BUS, 0]);
    entries.extend_from_slice(b"ISA   ");
    count += 1;
    entries.extend_from_slice(&[ENTRY_IOAPIC, ioapic, IOAPIC_VERSION, CPU_ENABLED]);
    entries.extend_from_slice(&(IOAPIC_ADDR as u32).to_le_bytes());
    count += 1;
    for pin in 0..IOAPIC_PINS {
        // Type, interrupt type, flags (conforming: 2 bytes), bus 0, its
        // IRQ, destination IOAPIC and pin.
        entries.extend_from_slice(&[ENTRY_IO_INTERRUPT, INT_VECTORED, 0, 0, 0, pin, ioapic, pin]);
        count += 1;
    }
    for (kind, lint) in [(INT_EXTINT, 0), (INT_NMI, 1)] {
        // Destination 0xff: every LAPIC.
        entries.extend_from_slice(&[ENTRY_LOCAL_INTERRUPT, kind, 0, 0, 0, 0, 0xff, lint]);
        count += 1;
    }

    let table_len = HEADER_LEN + entries.len();
    let mut header = Vec::with_capacity(table_len);
    header.extend_from_slice(b"PCMP");
    header.extend_from_slice(&(table_len as u16).to_le_bytes());
    header.push(SPEC_REV);
    header.push(0); // checksum, below
    header.extend_from_slice(b"PODVM   ");
    header.extend_from_slice(b"MICROVM     ");
    header.extend_from_slice(&0u32.to_le_bytes()); // OEM table
    header.extend_from_slice(&0u16.to_le_bytes()); // its size
    header.extend_from_slice(&count.to_le_bytes());
    header.extend_from_slice(&(LAPIC_ADDR as u32).to_le_bytes());
    header.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    debug_assert_eq!(header.len(), HEADER_LEN);
    header.extend_from_slice(&entries);
    header[7] = checksum(&header).wrapping_neg();

    let table_addr = start + FLOATING_POINTER_LEN as u64;
    let mut image = Vec::with_capacity(FLOATING_POINTER_LEN + table_len);
    image.extend_from_slice(b"_MP_");
    image.extend_from_slice(&(table_addr as u32).to_le_bytes());
    // Length in 16-byte units, revision, checksum, feature bytes (0: a
    // configuration table follows, no default configuration).
    image.extend_from_slice(&[1, SPEC_REV, 0, 0, 0, 0, 0, 0]);
    image[10] = checksum(&image).wrapping_neg();
    image.extend_from_slice(&header);
    Ok(image)
}

/// Writes the table for `vcpus` at [`MPTABLE_START`].
pub fn write(memory: &GuestMemoryMmap, vcpus: u8) -> Result<()> {
    let image = build(vcpus, MPTABLE_START)?;
    memory
        .write_slice(&image, GuestAddress(MPTABLE_START))
        .map_err(Error::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn checksums_are_zero_and_the_pointer_finds_the_table() -> Result<()> {
        let image = build(4, 0xf0000)?;
        assert_eq!(&image[..4], b"_MP_");
        assert_eq!(checksum(&image[..16]), 0, "floating pointer");
        let table_at = u32::from_le_bytes([image[4], image[5], image[6], image[7]]);
        assert_eq!(table_at, 0xf0010);
        let table = &image[16..];
        assert_eq!(&table[..4], b"PCMP");
        assert_eq!(usize::from(u16_at(table, 4)), table.len());
        assert_eq!(checksum(table), 0, "configuration table");
        // 4 CPUs, bus, IOAPIC, 24 I/O and 2 local interrupts.
        assert_eq!(u16_at(table, 34), 4 + 1 + 1 + 24 + 2);
        assert_eq!(table.len(), 44 + 4 * 20 + 8 + 8 + 24 * 8 + 2 * 8);
        Ok(())
    }

    #[test]
    fn one_processor_per_vcpu_the_first_the_bsp_and_the_ioapic_after_them() -> Result<()> {
        let image = build(3, 0xf0000)?;
        let entries = &image[16 + 44..];
        for id in 0..3u8 {
            let e = &entries[usize::from(id) * 20..];
            assert_eq!((e[0], e[1]), (ENTRY_PROCESSOR, id));
            assert_eq!(e[3], if id == 0 { 3 } else { 1 }, "enabled, BSP first");
        }
        let ioapic = &entries[60 + 8..];
        assert_eq!((ioapic[0], ioapic[1]), (ENTRY_IOAPIC, 3));
        assert_eq!(
            u32::from_le_bytes([ioapic[4], ioapic[5], ioapic[6], ioapic[7]]),
            0xfec0_0000
        );
        let irq5 = &entries[60 + 16 + 5 * 8..];
        assert_eq!(
            (irq5[0], irq5[5], irq5[6], irq5[7]),
            (ENTRY_IO_INTERRUPT, 5, 3, 5)
        );
        Ok(())
    }

    #[test]
    fn sixty_four_vcpus_fit_below_1_mib_and_255_do_not() -> Result<()> {
        let image = build(64, MPTABLE_START)?;
        assert!(MPTABLE_START + image.len() as u64 <= 0x10_0000);
        assert!(matches!(build(255, 0xf0000), Err(Error::TooManyCpus(255))));
        assert!(matches!(build(0, 0xf0000), Err(Error::TooManyCpus(0))));
        Ok(())
    }
}
