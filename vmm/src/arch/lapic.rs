//! Local APIC setup: LINT0 delivers the legacy PIC's interrupts (ExtINT),
//! LINT1 delivers NMIs, as on a PC.
//!
//! Register offsets and delivery modes from arch/x86/include/asm/apicdef.h.

use kvm_bindings::kvm_lapic_state;

/// `APIC_LVT0` register offset.
pub const APIC_LVT0: usize = 0x350;
/// `APIC_LVT1` register offset.
pub const APIC_LVT1: usize = 0x360;
/// `APIC_MODE_NMI` delivery mode.
pub const APIC_MODE_NMI: u32 = 0x4;
/// `APIC_MODE_EXTINT` delivery mode.
pub const APIC_MODE_EXTINT: u32 = 0x7;

/// Reads the 32-bit APIC register at `offset`.
fn get_reg(state: &kvm_lapic_state, offset: usize) -> u32 {
    let bytes: [u8; 4] = std::array::from_fn(|i| state.regs[offset + i] as u8);
    u32::from_le_bytes(bytes)
}

/// Writes the 32-bit APIC register at `offset`.
fn set_reg(state: &mut kvm_lapic_state, offset: usize, value: u32) {
    for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
        state.regs[offset + i] = byte as _;
    }
}

/// Sets the delivery mode (bits 10:8) of an LVT entry.
fn with_delivery_mode(reg: u32, mode: u32) -> u32 {
    (reg & !0x700) | (mode << 8)
}

/// Configures LINT0 as ExtINT and LINT1 as NMI in `state`.
pub fn set_lint(state: &mut kvm_lapic_state) {
    let lvt0 = get_reg(state, APIC_LVT0);
    set_reg(state, APIC_LVT0, with_delivery_mode(lvt0, APIC_MODE_EXTINT));
    let lvt1 = get_reg(state, APIC_LVT1);
    set_reg(state, APIC_LVT1, with_delivery_mode(lvt1, APIC_MODE_NMI));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_modes_are_set_and_other_bits_kept() {
        let mut state = kvm_lapic_state::default();
        set_reg(&mut state, APIC_LVT0, 0x0001_0000 | 0x300);
        set_lint(&mut state);
        assert_eq!(get_reg(&state, APIC_LVT0), 0x0001_0700);
        assert_eq!(get_reg(&state, APIC_LVT1), 0x400);
    }
}
