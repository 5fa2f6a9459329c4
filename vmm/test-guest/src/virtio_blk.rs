//! A minimal virtio-blk driver over virtio-mmio (virtio 1.2, 3.1.1 and
//! 4.2.3): finds the block device among the `virtio_mmio.device=` windows,
//! negotiates VERSION_1, sets up queue 0 in low RAM, reads sector 0 and the
//! disk ID (GET_ID) by polling the used ring, and prints both. Runs when
//! the command line has `testguest.blk=1`.

use core::fmt::Write;
use core::sync::atomic::{fence, Ordering};

use crate::checks::{find_virtio_device, Report};
use crate::cmdline::param;
use crate::io::Serial;
use crate::virtio_mmio::*;

/// `VIRTIO_ID_BLOCK`.
const VIRTIO_ID_BLOCK: u32 = 2;
/// Request types (include/uapi/linux/virtio_blk.h).
const T_IN: u32 = 0;
const T_GET_ID: u32 = 8;
/// Descriptor flags (include/uapi/linux/virtio_ring.h).
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

/// Queue size used.
const QUEUE_SIZE: u16 = 8;
/// Where the queue and buffers live: free RAM between 1 MiB and the guest
/// image at 2 MiB, identity-mapped.
const DESC: u64 = 0x10_0000;
const AVAIL: u64 = 0x10_1000;
const USED: u64 = 0x10_2000;
const HEADER: u64 = 0x10_3000;
const STATUS_BYTE: u64 = 0x10_3100;
const DATA: u64 = 0x10_4000;
/// Polls of the used ring before giving up.
const POLL_LIMIT: u32 = 50_000_000;

fn write<T>(addr: u64, value: T) {
    // SAFETY: `addr` is in the identity-mapped low RAM set aside above or
    // in the device's mapped MMIO window.
    unsafe { (addr as *mut T).write_volatile(value) }
}

fn read<T>(addr: u64) -> T {
    // SAFETY: as for `write`.
    unsafe { (addr as *const T).read_volatile() }
}

/// Device initialisation; the error says which step failed.
fn init(base: u64) -> Result<(), &'static str> {
    let reg = |offset: u64, value: u32| write(base + offset, value);
    reg(STATUS, 0);
    reg(STATUS, ACKNOWLEDGE | DRIVER);
    reg(DEVICE_FEATURES_SEL, 1);
    if read::<u32>(base + DEVICE_FEATURES) & 1 == 0 {
        return Err("no VIRTIO_F_VERSION_1");
    }
    reg(DRIVER_FEATURES_SEL, 1);
    reg(DRIVER_FEATURES, 1);
    reg(DRIVER_FEATURES_SEL, 0);
    reg(DRIVER_FEATURES, 0);
    reg(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    if read::<u32>(base + STATUS) & FEATURES_OK == 0 {
        return Err("FEATURES_OK refused");
    }
    reg(QUEUE_SEL, 0);
    if read::<u32>(base + QUEUE_NUM_MAX) < u32::from(QUEUE_SIZE) {
        return Err("queue too small");
    }
    for addr in (DESC..DATA + 0x1000).step_by(8) {
        write(addr, 0u64);
    }
    reg(QUEUE_NUM, u32::from(QUEUE_SIZE));
    reg(QUEUE_DESC_LOW, DESC as u32);
    reg(QUEUE_AVAIL_LOW, AVAIL as u32);
    reg(QUEUE_USED_LOW, USED as u32);
    reg(QUEUE_READY, 1);
    reg(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    Ok(())
}

fn set_desc(index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let at = DESC + u64::from(index) * 16;
    write(at, addr);
    write(at + 8, len);
    write(at + 12, flags);
    write(at + 14, next);
}

/// Sends one request (header, `len` bytes into DATA, status) and polls
/// for its completion; returns the status byte.
fn request(base: u64, number: u16, kind: u32, sector: u64, len: u32) -> Result<u8, &'static str> {
    write(HEADER, kind);
    write(HEADER + 4, 0u32);
    write(HEADER + 8, sector);
    write(STATUS_BYTE, 0xffu8);
    set_desc(0, HEADER, 16, F_NEXT, 1);
    set_desc(1, DATA, len, F_WRITE | F_NEXT, 2);
    set_desc(2, STATUS_BYTE, 1, F_WRITE, 0);
    write(AVAIL + 4 + u64::from(number % QUEUE_SIZE) * 2, 0u16);
    fence(Ordering::SeqCst);
    write(AVAIL + 2, number.wrapping_add(1));
    fence(Ordering::SeqCst);
    write(base + QUEUE_NOTIFY, 0u32);
    for _ in 0..POLL_LIMIT {
        if read::<u16>(USED + 2) == number.wrapping_add(1) {
            fence(Ordering::SeqCst);
            return Ok(read(STATUS_BYTE));
        }
        core::hint::spin_loop();
    }
    Err("no completion in the used ring")
}

/// Prints `len` bytes at DATA, non-printable ones as '.'.
fn print_data(label: &str, len: u64) {
    let _ = write!(Serial, "{label}: ");
    for i in 0..len {
        let byte: u8 = read(DATA + i);
        let shown = if byte.is_ascii_graphic() || byte == b' ' {
            byte
        } else {
            b'.'
        };
        let _ = Serial.write_char(shown as char);
    }
    let _ = writeln!(Serial);
}

/// The `virtio-blk` check: read sector 0 and the ID of the first disk.
pub fn check(cmdline: &[u8], report: &mut Report) {
    if param(cmdline, "testguest.blk") != Some(b"1") {
        return;
    }
    let Some(base) = find_virtio_device(cmdline, VIRTIO_ID_BLOCK) else {
        report.check("virtio-blk", false, format_args!("no block device"));
        return;
    };
    let result = init(base).and_then(|()| {
        let capacity =
            u64::from(read::<u32>(base + CONFIG)) | u64::from(read::<u32>(base + CONFIG + 4)) << 32;
        let _ = writeln!(Serial, "blk capacity: {capacity} sectors");
        let read_status = request(base, 0, T_IN, 0, 512)?;
        print_data("blk sector0", 32);
        let id_status = request(base, 1, T_GET_ID, 0, 20)?;
        print_data("blk serial", 20);
        Ok((read_status, id_status))
    });
    report.check(
        "virtio-blk",
        result == Ok((0, 0)),
        format_args!("base={base:#x} result={result:?}"),
    );
}
