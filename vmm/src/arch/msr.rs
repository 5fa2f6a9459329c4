//! Model-specific registers every vCPU gets at boot.
//!
//! Indexes from arch/x86/include/asm/msr-index.h. The syscall MSRs start at
//! zero (the kernel programs them); MISC_ENABLE turns on fast strings and
//! the MTRR default type makes all memory write-back.

/// `MSR_IA32_SYSENTER_CS`.
pub const MSR_IA32_SYSENTER_CS: u32 = 0x174;
/// `MSR_IA32_SYSENTER_ESP`.
pub const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
/// `MSR_IA32_SYSENTER_EIP`.
pub const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
/// `MSR_STAR`.
pub const MSR_STAR: u32 = 0xc000_0081;
/// `MSR_LSTAR`.
pub const MSR_LSTAR: u32 = 0xc000_0082;
/// `MSR_CSTAR`.
pub const MSR_CSTAR: u32 = 0xc000_0083;
/// `MSR_SYSCALL_MASK`.
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// `MSR_KERNEL_GS_BASE`.
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// `MSR_IA32_TSC`.
pub const MSR_IA32_TSC: u32 = 0x10;
/// `MSR_IA32_MISC_ENABLE`.
pub const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
/// `MSR_IA32_MISC_ENABLE_FAST_STRING`.
pub const MSR_IA32_MISC_ENABLE_FAST_STRING: u64 = 1 << 0;
/// `MSR_MTRRdefType`.
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRdefType: MTRRs enabled (bit 11).
pub const MTRR_ENABLE: u64 = 1 << 11;
/// Memory type write-back (`MTRR_TYPE_WRBACK` in asm/mtrr.h).
pub const MTRR_TYPE_WRBACK: u64 = 6;

/// The `(index, value)` pairs written to every vCPU before it first runs.
pub fn boot_msrs() -> Vec<(u32, u64)> {
    vec![
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MSR_IA32_MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_msrs_are_unique_and_enable_write_back() {
        let msrs = boot_msrs();
        let mut indexes: Vec<u32> = msrs.iter().map(|m| m.0).collect();
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!(indexes.len(), msrs.len());
        assert!(msrs.contains(&(MSR_MTRR_DEF_TYPE, 0x806)));
        assert!(msrs.contains(&(MSR_IA32_MISC_ENABLE, 1)));
    }
}
