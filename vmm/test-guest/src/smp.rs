//! Starts each application processor the way an OS does, INIT then
//! STARTUP IPIs through the boot CPU's local APIC, into a real-mode
//! trampoline that sets a flag, and checks the flag: the VMM's other vCPU
//! threads wait in KVM's in-kernel LAPIC and run once started. Runs when
//! the command line says `testguest.vcpus=N` with N > 1.

use core::fmt::Write;

use crate::checks::{map_above_1gib, Report};
use crate::cmdline::{number, param};
use crate::io::Serial;

/// The local APIC's registers (the MP table says so too).
const LAPIC: u64 = 0xfee0_0000;
/// Interrupt command register, low and high halves.
const ICR_LOW: u64 = 0x300;
const ICR_HIGH: u64 = 0x310;
/// ICR: INIT, level assert; STARTUP with the vector in the low byte.
const ICR_INIT: u32 = 0x4500;
const ICR_STARTUP: u32 = 0x4600;
/// ICR delivery status: the IPI is still being sent.
const ICR_PENDING: u32 = 1 << 12;
/// Where the trampoline is (STARTUP vector 0x08 → 0x0800:0000) and the
/// flag it sets (in its page, clear of every boot structure).
const TRAMPOLINE: u64 = 0x8000;
const FLAG: u64 = 0x8100;
/// Polls of the flag before giving up (each an emulated instruction or
/// three on this project's hosts: seconds, not minutes).
const POLLS: u32 = 3_000_000;

/// 16-bit code: `mov byte [0x8100], 1` (DS is 0 after INIT), then
/// `hlt; jmp $-1`.
const TRAMPOLINE_CODE: [u8; 8] = [0xc6, 0x06, 0x00, 0x81, 0x01, 0xf4, 0xeb, 0xfd];

fn write<T>(addr: u64, value: T) {
    // SAFETY: the trampoline page and the flag are free low RAM; the
    // LAPIC window is mapped by `map_above_1gib` before use.
    unsafe { (addr as *mut T).write_volatile(value) }
}

fn read<T>(addr: u64) -> T {
    // SAFETY: as for `write`.
    unsafe { (addr as *const T).read_volatile() }
}

fn send_ipi(apic_id: u8, command: u32) {
    write(LAPIC + ICR_HIGH, u32::from(apic_id) << 24);
    write(LAPIC + ICR_LOW, command);
    while read::<u32>(LAPIC + ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Starts the AP with LAPIC ID `apic_id`; whether it ran the trampoline.
fn start(apic_id: u8) -> bool {
    write::<u8>(FLAG, 0);
    send_ipi(apic_id, ICR_INIT);
    send_ipi(apic_id, ICR_STARTUP | (TRAMPOLINE >> 12) as u32);
    (0..POLLS).any(|_| read::<u8>(FLAG) == 1)
}

/// The `smp` check: every AP up.
pub fn check(cmdline: &[u8], report: &mut Report) {
    let vcpus = param(cmdline, "testguest.vcpus")
        .and_then(number)
        .unwrap_or(1);
    if vcpus < 2 {
        return;
    }
    for (i, byte) in TRAMPOLINE_CODE.iter().enumerate() {
        write(TRAMPOLINE + i as u64, *byte);
    }
    map_above_1gib(LAPIC);
    let mut started = 0;
    for apic_id in 1..vcpus.min(255) as u8 {
        if start(apic_id) {
            started += 1;
            let _ = writeln!(Serial, "smp: cpu {apic_id} started");
        } else {
            let _ = writeln!(Serial, "smp: cpu {apic_id} did not start");
        }
    }
    report.check(
        "smp",
        started + 1 == vcpus,
        format_args!("{} of {vcpus} CPUs running", started + 1),
    );
}
