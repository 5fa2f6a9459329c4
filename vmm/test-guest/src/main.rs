//! podvm's no_std test guest: booted by `podvm-vmm` through the Linux
//! 64-bit boot protocol, or through PVH when built with the `pvh` feature
//! (`pvh.rs`), it checks what the VMM handed over, prints the
//! results on COM1 and ends as the command line says:
//! `testguest.end=reset` (default; i8042 reset), `exit:N` (debug-exit
//! port), `crash` (triple fault) or `halt` (cli; hlt until killed: for
//! benchmarks). A failed check ends with debug-exit 1. Under PVH,
//! `testguest.checks=off` skips the checks (for benchmarks against other
//! VMMs).

#![no_std]
#![no_main]

mod checks;
mod cmdline;
mod io;
#[cfg(feature = "pvh")]
mod pvh;
mod smp;
mod virtio_blk;
mod virtio_mmio;
mod virtio_vsock;

use core::fmt::Write;

use io::Serial;

core::arch::global_asm!(
    ".section .text.start, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + __stack_top]",
    "    mov rdi, rsi",
    "    call guest_main",
    "2:  cli",
    "    hlt",
    "    jmp 2b",
);

#[no_mangle]
extern "C" fn guest_main(zero_page: u64) -> ! {
    let _ = writeln!(
        Serial,
        "podvm-test-guest: booted (linux 64-bit boot protocol)"
    );
    let mut report = checks::Report { failed: 0 };
    let cmdline = checks::run_linux64(zero_page, &mut report);
    finish(cmdline, &report)
}

/// Entered from `pvh::pvh_start32` in long mode.
#[cfg(feature = "pvh")]
#[no_mangle]
extern "C" fn guest_main_pvh(start_info: u64) -> ! {
    let _ = writeln!(Serial, "podvm-test-guest: booted (pvh)");
    let mut report = checks::Report { failed: 0 };
    let cmdline = pvh::cmdline(start_info);
    if cmdline::param(cmdline, "testguest.checks") == Some(b"off") {
        // Benchmarks boot this guest on other VMMs too, whose boot
        // structures lie elsewhere.
        finish(cmdline, &report)
    }
    let cmdline = pvh::run(start_info, &mut report);
    finish(cmdline, &report)
}

/// Reports the outcome and ends the VM as `testguest.end` asks.
fn finish(cmdline: &[u8], report: &checks::Report) -> ! {
    if report.failed > 0 {
        let _ = writeln!(Serial, "podvm-test-guest: {} checks FAILED", report.failed);
        io::debug_exit(1);
    }
    let _ = writeln!(Serial, "podvm-test-guest: all checks passed");
    match cmdline::param(cmdline, "testguest.end") {
        None | Some(b"reset") => io::reset(),
        Some(b"halt") => io::halt_forever(),
        Some(b"crash") => io::crash(),
        Some(end) => match end.strip_prefix(b"exit:").and_then(cmdline::number) {
            Some(code) => io::debug_exit(code as u8),
            None => {
                let _ = writeln!(Serial, "podvm-test-guest: unknown testguest.end");
                io::debug_exit(2)
            }
        },
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Serial, "podvm-test-guest: PANIC {info}");
    io::debug_exit(0xff)
}
