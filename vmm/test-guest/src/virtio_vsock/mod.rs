//! A polled virtio-vsock driver over virtio-mmio (virtio 1.2, 5.10 and
//! 4.2.3) for the test guest: finds the vsock device among the
//! `virtio_mmio.device=` windows, negotiates VERSION_1, sets up the rx (0),
//! tx (1) and event (2) queues in RAM at 8 MiB, checks the guest CID in
//! config space, and then speaks the vsock stream protocol by polling the
//! used rings (no interrupts): REQUEST/RESPONSE, RW, CREDIT_UPDATE,
//! CREDIT_REQUEST, SHUTDOWN and RST, with `buf_alloc`/`fwd_cnt` credit
//! accounting both ways (the host's credit is respected when sending; ours
//! is a 256 KiB buffer per connection, reported as it drains).
//!
//! Command-line parameters (the driver runs when the first is present):
//!
//! - `testguest.vsock.cid=N`: the CID the device must report;
//! - `testguest.vsock.listen=P`: accept host connections to port P and echo
//!   every byte back until the host closes them; up to 8 at once;
//! - `testguest.vsock.stop=S` (default P+1): a host connection to port S
//!   ends the echo service once no echo connection is open; the guest then
//!   closes it (SHUTDOWN, the host sees EOF);
//! - `testguest.vsock.connect=Q`: connect to host port Q, send
//!   `testguest.vsock.send=N` bytes (default 300000) of the pattern
//!   [`pattern::pattern`] with seed `g`, shut down the sending side, and
//!   expect `testguest.vsock.expect=M` bytes (default 300000) of the
//!   pattern with seed `h` back before the host closes. Runs alongside the
//!   echo service.
//!
//! Results: `ok`/`FAIL` lines `vsock-device`, `vsock-connect`,
//! `vsock-echo` and `vsock-protocol` (no unexpected packet seen), and a
//! `vsock echo: ...` statistics line.
//!
//! Where KVM emulates every guest instruction (this project's `kvm_pvm`
//! machines, see `docs/benchmarks.md`), instructions are the cost, so the
//! hot path is kept short: waiting reads just the two used indexes; an
//! echoed packet goes back from its own rx buffer (header rewritten, no
//! copy) when nothing is queued before it and the host has credit, and
//! is copied into the connection's buffer only otherwise; the client's
//! test data is written and checked eight bytes at a time
//! ([`pattern::fill_pattern`]); only the connections that received
//! something are looked at; barriers are compiler fences (x86 is TSO).
//!
//! The parts: [`layout`] (where the queues and buffers live in RAM),
//! [`mem`] (volatile access, copies, the barrier), [`virtq`] (the split
//! virtqueue), [`mmio`] (the register window), [`header`] (the packet
//! header and the protocol's constants), [`conn`] (one connection's state
//! and credit), [`tx`] (the tx queue and its buffers), [`pattern`] (the
//! test data), [`driver`] (device bring-up and the shared state),
//! [`receive`] and [`send`] (the two directions), [`service`] (the
//! polling loop). Each module is a codegen unit of its own, so the small
//! functions the hot path calls across modules (the pattern's fill and
//! check, [`header::Header::store`], [`conn::Conn::blocked_on_credit`])
//! are `#[inline]`: compiled next to their callers, they are inlined or
//! specialised (the pattern's seed a constant) as within one unit.

mod conn;
mod driver;
mod header;
mod layout;
mod mem;
mod mmio;
mod pattern;
mod receive;
mod send;
mod service;
mod tx;
mod virtq;

use core::fmt::Write;

use crate::checks::{find_virtio_device, Report};
use crate::cmdline::{number, param};
use crate::io::Serial;
use driver::Vsock;
use layout::{REGION, REGION_END};

/// `VIRTIO_ID_VSOCK`.
const VIRTIO_ID_VSOCK: u32 = 19;

extern "C" {
    /// End of the guest image (its stack top), from linker.ld.
    static __stack_top: u8;
}

fn port(cmdline: &[u8], key: &str) -> Option<u32> {
    param(cmdline, key)
        .and_then(number)
        .and_then(|p| u32::try_from(p).ok())
}

/// The vsock checks: runs when the command line has `testguest.vsock.cid=`.
pub fn check(cmdline: &[u8], report: &mut Report) {
    let Some(expected_cid) = param(cmdline, "testguest.vsock.cid").and_then(number) else {
        return;
    };
    let mem = param(cmdline, "testguest.mem_mib")
        .and_then(number)
        .unwrap_or(0)
        << 20;
    let image_end = core::ptr::addr_of!(__stack_top) as u64;
    if mem < REGION_END || image_end > REGION {
        report.check(
            "vsock-device",
            false,
            format_args!(
                "needs RAM {REGION:#x}..{REGION_END:#x}: memory {mem:#x}, image end {image_end:#x}"
            ),
        );
        return;
    }
    let Some(base) = find_virtio_device(cmdline, VIRTIO_ID_VSOCK) else {
        report.check("vsock-device", false, format_args!("no vsock device"));
        return;
    };
    let mut vsock = match Vsock::init(base) {
        Ok(vsock) => vsock,
        Err(why) => {
            report.check("vsock-device", false, format_args!("base={base:#x}: {why}"));
            return;
        }
    };
    let cid = vsock.cid;
    report.check(
        "vsock-device",
        cid == expected_cid,
        format_args!("base={base:#x} cid={cid} expected {expected_cid}"),
    );
    if cid != expected_cid {
        return;
    }
    let _ = writeln!(Serial, "vsock: device at {base:#x}, guest cid {cid}");
    vsock.listen = port(cmdline, "testguest.vsock.listen");
    vsock.stop =
        port(cmdline, "testguest.vsock.stop").or_else(|| vsock.listen.map(|p| p.wrapping_add(1)));
    let connect = port(cmdline, "testguest.vsock.connect");
    let param_or = |key, default| param(cmdline, key).and_then(number).unwrap_or(default);
    let send = param_or("testguest.vsock.send", 300_000);
    let expect = param_or("testguest.vsock.expect", 300_000);
    if let Some(port) = connect {
        vsock.connect(port, send);
    }
    vsock.run();
    if let Some(port) = connect {
        let outcome = vsock.client;
        let ok = outcome.is_some_and(|o| {
            o.error.is_none() && o.mismatch.is_none() && o.sent == send && o.received == expect
        });
        report.check(
            "vsock-connect",
            ok,
            format_args!("port {port}: sent {send}, expected {expect}: {outcome:?}"),
        );
    }
    if vsock.listen.is_some() {
        let _ = writeln!(
            Serial,
            "vsock echo: {} connections, at most {} at once, {} bytes echoed, {} of them \
             from the rx buffer in place",
            vsock.served, vsock.most_at_once, vsock.echoed, vsock.echoed_in_place
        );
        report.check(
            "vsock-echo",
            vsock.served > 0 && vsock.stop_requested,
            format_args!("served {}, stop {}", vsock.served, vsock.stop_requested),
        );
    }
    report.check(
        "vsock-protocol",
        vsock.errors == 0,
        format_args!(
            "{} unexpected packets, first {:?}",
            vsock.errors, vsock.first_error
        ),
    );
}
