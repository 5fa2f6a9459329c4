//! Access to the driver's RAM (the region of `layout.rs`) and to the
//! device's MMIO window: volatile reads and writes, copies between
//! buffers, and the barrier that orders them with the device.

use core::sync::atomic::{compiler_fence, Ordering};

/// Orders our ring accesses with the device's. x86 is TSO (stores are
/// seen in order, loads are not reordered with loads), and no access here
/// depends on a store being seen before a later load (no EVENT_IDX), so
/// keeping the compiler from reordering is enough, as Linux's `virt_wmb`
/// and `virt_rmb` on x86; it also spares the locked instruction that a
/// full fence costs where KVM emulates the guest.
pub fn barrier() {
    compiler_fence(Ordering::SeqCst);
}

pub fn write<T>(addr: u64, value: T) {
    // SAFETY: `addr` is in the identity-mapped RAM region of `layout.rs`
    // (checked against the image end and the memory size by `check`) or
    // in the device's mapped MMIO window.
    unsafe { (addr as *mut T).write_volatile(value) }
}

pub fn read<T>(addr: u64) -> T {
    // SAFETY: as for `write`.
    unsafe { (addr as *const T).read_volatile() }
}

/// Copies `len` bytes between RAM buffers of the region.
pub fn copy(from: u64, to: u64, len: u32) {
    // SAFETY: both ranges lie in the region (rx/tx/connection buffers,
    // which do not overlap), identity-mapped.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, len as usize) }
}
