//! Port I/O and the COM1 serial writer.

use core::arch::asm;
use core::fmt;

/// COM1 base port.
const COM1: u16 = 0x3f8;
/// Line status register offset; bit 5 = transmit holding register empty.
const LSR: u16 = 5;
const LSR_THR_EMPTY: u8 = 1 << 5;
/// i8042 command port and its CPU-reset command.
const I8042_COMMAND: u16 = 0x64;
const I8042_RESET_CPU: u8 = 0xfe;
/// The VMM's debug-exit port.
const DEBUG_EXIT: u16 = 0xf4;

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: port I/O has no memory effects on this guest; the VMM or
    // KVM handles the access.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack)) }
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: as for `outb`.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack)) }
    value
}

/// COM1, polled.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            let mut spins = 0u32;
            while inb(COM1 + LSR) & LSR_THR_EMPTY == 0 && spins < 100_000 {
                spins += 1;
            }
            outb(COM1, byte);
        }
        Ok(())
    }
}

/// Asks the VMM to stop with `status` on the debug-exit port.
pub fn debug_exit(status: u8) -> ! {
    outb(DEBUG_EXIT, status);
    halt_forever()
}

/// Pulses the i8042 reset line (what Linux `reboot=k` does).
pub fn reset() -> ! {
    outb(I8042_COMMAND, I8042_RESET_CPU);
    halt_forever()
}

/// Triple-faults: an empty IDT, then an invalid opcode.
pub fn crash() -> ! {
    let idt = [0u16; 5];
    // SAFETY: deliberately makes every exception a triple fault; the VM
    // ends here, which is the point.
    unsafe { asm!("lidt [{}]", "ud2", in(reg) idt.as_ptr(), options(noreturn)) }
}

/// Halts with interrupts off until the VMM stops the VM.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this vCPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}
