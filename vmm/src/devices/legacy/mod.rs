//! Legacy PC devices on port I/O: the COM1 serial port, the i8042 reset
//! line and a debug-exit port.

pub mod debug_exit;
pub mod i8042;
pub mod serial;

pub use debug_exit::DebugExit;
pub use i8042::I8042;
pub use serial::{SerialDevice, SerialOutput};

/// COM1 base port.
pub const COM1_PORT: u64 = 0x3f8;
/// COM1's eight registers.
pub const COM1_LEN: u64 = 8;
/// COM1's ISA interrupt line.
pub const COM1_IRQ: u32 = 4;
/// i8042 data port; the command/status port is at +4 (0x64).
pub const I8042_PORT: u64 = 0x60;
/// The i8042's span: 0x60..=0x64.
pub const I8042_LEN: u64 = 5;
/// Debug-exit port, where QEMU's `isa-debug-exit` sits by default.
pub const DEBUG_EXIT_PORT: u64 = 0xf4;
