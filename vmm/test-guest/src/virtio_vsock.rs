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
//!   [`pattern`] with seed `g`, shut down the sending side, and expect
//!   `testguest.vsock.expect=M` bytes (default 300000) of the pattern with
//!   seed `h` back before the host closes. Runs alongside the echo service.
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
//! ([`fill_pattern`]); only the connections that received something are
//! looked at; barriers are compiler fences (x86 is TSO).

use core::fmt::Write;
use core::sync::atomic::{compiler_fence, Ordering};

use crate::checks::{find_virtio_device, Report};
use crate::cmdline::{number, param};
use crate::io::Serial;
use crate::virtio_mmio::*;

/// `VIRTIO_ID_VSOCK`.
const VIRTIO_ID_VSOCK: u32 = 19;
/// Descriptor flag: device-writable; avail flag: no interrupts wanted
/// (include/uapi/linux/virtio_ring.h).
const F_WRITE: u16 = 2;
const AVAIL_F_NO_INTERRUPT: u16 = 1;

/// include/uapi/linux/virtio_vsock.h and vm_sockets.h.
const HOST_CID: u64 = 2;
const HEADER_LEN: u64 = 44;
const TYPE_STREAM: u16 = 1;
const OP_REQUEST: u16 = 1;
const OP_RESPONSE: u16 = 2;
const OP_RST: u16 = 3;
const OP_SHUTDOWN: u16 = 4;
const OP_RW: u16 = 5;
const OP_CREDIT_UPDATE: u16 = 6;
const OP_CREDIT_REQUEST: u16 = 7;
const SHUTDOWN_RCV: u32 = 1;
const SHUTDOWN_SEND: u32 = 2;
const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

/// Queue indexes and sizes (powers of two).
const RX: u32 = 0;
const TX: u32 = 1;
const EVENT: u32 = 2;
const RX_SIZE: u16 = 64;
const TX_SIZE: u16 = 64;
const EVENT_SIZE: u16 = 4;
/// Everything lives in identity-mapped RAM from 8 MiB (above the guest
/// image at 2 MiB, whose end is checked): three queues of three 4 KiB
/// pages each (descriptors, avail, used), event buffers, then the rx and
/// tx buffers (one descriptor of 16 KiB each, header and payload), then
/// one receive buffer of [`BUF_ALLOC`] per connection slot.
const REGION: u64 = 0x80_0000;
const RX_RING: u64 = REGION;
const TX_RING: u64 = REGION + 0x3000;
const EVENT_RING: u64 = REGION + 0x6000;
const EVENT_BUFS: u64 = REGION + 0x9000;
const RINGS_END: u64 = REGION + 0xa000;
const RX_BUFS: u64 = REGION + 0x10_0000;
const TX_BUFS: u64 = REGION + 0x20_0000;
const BUF_SIZE: u64 = 0x4000;
const CONN_BUFS: u64 = REGION + 0x40_0000;
/// Our receive buffer per connection (`buf_alloc`; a power of two).
const BUF_ALLOC: u32 = 256 * 1024;
const MAX_CONNS: usize = 8;
/// The bit of `Vsock::pump_mask` for RSTs owed.
const RESETS: usize = 31;
const REGION_END: u64 = CONN_BUFS + MAX_CONNS as u64 * BUF_ALLOC as u64;
/// Largest payload per tx packet.
const TX_PAYLOAD: u32 = (BUF_SIZE - HEADER_LEN) as u32;
/// Consumed bytes after which the host is told (CREDIT_UPDATE) even if no
/// data packet carries the news.
const CREDIT_UPDATE_AFTER: u32 = BUF_ALLOC / 4;
/// The guest's port for its own connection.
const CLIENT_PORT: u32 = 49152;
/// Polls without progress allowed while closing the stop connection.
const CLOSE_POLLS: u32 = 1_000_000;

extern "C" {
    /// End of the guest image (its stack top), from linker.ld.
    static __stack_top: u8;
}

/// Orders our ring accesses with the device's. x86 is TSO (stores are
/// seen in order, loads are not reordered with loads), and no access here
/// depends on a store being seen before a later load (no EVENT_IDX), so
/// keeping the compiler from reordering is enough, as Linux's `virt_wmb`
/// and `virt_rmb` on x86; it also spares the locked instruction that a
/// full fence costs where KVM emulates the guest.
fn barrier() {
    compiler_fence(Ordering::SeqCst);
}

fn write<T>(addr: u64, value: T) {
    // SAFETY: `addr` is in the identity-mapped RAM region set aside above
    // (checked against the image end and the memory size) or in the
    // device's mapped MMIO window.
    unsafe { (addr as *mut T).write_volatile(value) }
}

fn read<T>(addr: u64) -> T {
    // SAFETY: as for `write`.
    unsafe { (addr as *const T).read_volatile() }
}

/// Copies `len` bytes between RAM buffers of the region.
fn copy(from: u64, to: u64, len: u32) {
    // SAFETY: both ranges lie in the region (rx/tx/connection buffers,
    // which do not overlap), identity-mapped.
    unsafe { core::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, len as usize) }
}

/// The test data: byte `i` of the stream with `seed` (the host side of the
/// tests computes the same).
pub fn pattern(seed: u8, i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 8) as u8) ^ seed
}

/// `i % 251` for `i` in `0..258`: the eight bytes from index `m < 251`,
/// read as one little-endian word, are the `i % 251` parts of [`pattern`]
/// for stream offsets `i..i + 8` where `i % 251 == m`.
static CYCLE: [u8; 258] = {
    let mut cycle = [0u8; 258];
    let mut i = 0;
    while i < cycle.len() {
        cycle[i] = (i % 251) as u8;
        i += 1;
    }
    cycle
};

/// [`pattern`] bytes `i..i + 8` as a little-endian word, for `i` a
/// multiple of 8 (so that the eight share `i >> 8`) with `i % 251 == m`.
#[inline(always)]
fn pattern_word(seed: u8, i: u64, m: usize) -> u64 {
    debug_assert!(i.is_multiple_of(8) && m < 251);
    // SAFETY: `m < 251`, so the eight bytes lie in CYCLE.
    let cycle = unsafe { CYCLE.as_ptr().add(m).cast::<u64>().read_unaligned() };
    cycle ^ (u64::from((i >> 8) as u8 ^ seed) * 0x0101_0101_0101_0101)
}

/// Writes `len` bytes of the pattern `seed` from stream offset `from` at
/// `to`, eight at a time from the first offset that is a multiple of 8.
///
/// About 1.6 instructions per byte, where a byte at a time took 17 to 20
/// (the `% 251` alone nine). That matters where KVM emulates every guest
/// instruction: at about 10 µs per byte, generating the client's data or
/// checking the host's answer took seconds inside one [`Vsock::poll`],
/// and packets queued behind it went unanswered that long: a host
/// connection's REQUEST outlived the VMM's 2 s connect timeout, and the
/// VMM reset it.
fn fill_pattern(seed: u8, from: u64, to: u64, len: u32) {
    let end = from + u64::from(len);
    let mut i = from;
    while i < end && !i.is_multiple_of(8) {
        write(to + (i - from), pattern(seed, i));
        i += 1;
    }
    let mut m = (i % 251) as usize;
    while end - i >= 8 {
        let at = (to + (i - from)) as *mut u64;
        // SAFETY: as for `write`; the buffer need not be aligned.
        unsafe { at.write_unaligned(pattern_word(seed, i, m)) };
        i += 8;
        m += 8;
        if m >= 251 {
            m -= 251;
        }
    }
    while i < end {
        write(to + (i - from), pattern(seed, i));
        i += 1;
    }
}

/// The first stream offset in `from..from + len` where the bytes at `at`
/// differ from the pattern `seed`; compared eight at a time as
/// [`fill_pattern`] writes them.
fn pattern_mismatch(seed: u8, from: u64, at: u64, len: u32) -> Option<u64> {
    let end = from + u64::from(len);
    let differs = |i: u64| read::<u8>(at + (i - from)) != pattern(seed, i);
    let mut i = from;
    while i < end && !i.is_multiple_of(8) {
        if differs(i) {
            return Some(i);
        }
        i += 1;
    }
    let mut m = (i % 251) as usize;
    while end - i >= 8 {
        let word = (at + (i - from)) as *const u64;
        // SAFETY: as for `read`; the buffer need not be aligned.
        if unsafe { word.read_unaligned() } != pattern_word(seed, i, m) {
            return (i..i + 8).find(|&j| differs(j));
        }
        i += 8;
        m += 8;
        if m >= 251 {
            m -= 251;
        }
    }
    (i..end).find(|&j| differs(j))
}

/// `struct virtio_vsock_hdr` (44 bytes, little-endian, packed; every
/// buffer here starts 16 KiB-aligned, so each field is naturally aligned).
#[derive(Clone, Copy, Debug, Default)]
struct Header {
    src_cid: u64,
    dst_cid: u64,
    src_port: u32,
    dst_port: u32,
    len: u32,
    kind: u16,
    op: u16,
    flags: u32,
    buf_alloc: u32,
    fwd_cnt: u32,
}

impl Header {
    fn load(at: u64) -> Self {
        Self {
            src_cid: read(at),
            dst_cid: read(at + 8),
            src_port: read(at + 16),
            dst_port: read(at + 20),
            len: read(at + 24),
            kind: read(at + 28),
            op: read(at + 30),
            flags: read(at + 32),
            buf_alloc: read(at + 36),
            fwd_cnt: read(at + 40),
        }
    }

    fn store(&self, at: u64) {
        write(at, self.src_cid);
        write(at + 8, self.dst_cid);
        write(at + 16, self.src_port);
        write(at + 20, self.dst_port);
        write(at + 24, self.len);
        write(at + 28, self.kind);
        write(at + 30, self.op);
        write(at + 32, self.flags);
        write(at + 36, self.buf_alloc);
        write(at + 40, self.fwd_cnt);
    }
}

/// A split virtqueue: descriptors, avail and used rings on their own pages.
struct Virtq {
    index: u32,
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    /// Next avail slot to fill, and the avail index the device has seen.
    next_avail: u16,
    published: u16,
    last_used: u16,
}

impl Virtq {
    const fn new(index: u32, size: u16, at: u64) -> Self {
        Self {
            index,
            size,
            desc: at,
            avail: at + 0x1000,
            used: at + 0x2000,
            next_avail: 0,
            published: 0,
            last_used: 0,
        }
    }

    /// Descriptor `id`: one buffer, no chaining.
    fn set_desc(&self, id: u16, addr: u64, len: u32, flags: u16) {
        let at = self.desc + u64::from(id) * 16;
        write(at, addr);
        write(at + 8, len);
        write(at + 12, flags);
        write(at + 14, 0u16);
    }

    /// Adds descriptor `id` to the avail ring, not yet visible to the device.
    fn push(&mut self, id: u16) {
        let slot = u64::from(self.next_avail & (self.size - 1));
        write(self.avail + 4 + slot * 2, id);
        self.next_avail = self.next_avail.wrapping_add(1);
    }

    fn unpublished(&self) -> u16 {
        self.next_avail.wrapping_sub(self.published)
    }

    /// Makes the pushed descriptors visible.
    fn publish(&mut self) {
        barrier();
        write(self.avail + 2, self.next_avail);
        self.published = self.next_avail;
        barrier();
    }

    /// Whether the device used buffers not popped yet.
    #[inline(always)]
    fn has_used(&self) -> bool {
        read::<u16>(self.used + 2) != self.last_used
    }

    /// The next used element: (descriptor id, bytes written).
    fn pop_used(&mut self) -> Option<(u16, u32)> {
        if !self.has_used() {
            return None;
        }
        barrier();
        let mask = self.size - 1;
        let elem = self.used + 4 + u64::from(self.last_used & mask) * 8;
        let id: u32 = read(elem);
        let len: u32 = read(elem + 4);
        self.last_used = self.last_used.wrapping_add(1);
        Some(((id & u32::from(mask)) as u16, len))
    }
}

/// The device's register window.
#[derive(Clone, Copy)]
struct Mmio(u64);

impl Mmio {
    fn set(self, offset: u64, value: u32) {
        write(self.0 + offset, value);
    }

    fn get(self, offset: u64) -> u32 {
        read(self.0 + offset)
    }

    fn notify(self, queue: u32) {
        barrier();
        self.set(QUEUE_NOTIFY, queue);
    }

    /// Queue setup (virtio 1.2, 4.2.3.2).
    fn setup_queue(self, q: &Virtq) -> Result<(), &'static str> {
        self.set(QUEUE_SEL, q.index);
        if self.get(QUEUE_NUM_MAX) < u32::from(q.size) {
            return Err("queue too small");
        }
        self.set(QUEUE_NUM, u32::from(q.size));
        for (low, high, addr) in [
            (QUEUE_DESC_LOW, QUEUE_DESC_HIGH, q.desc),
            (QUEUE_AVAIL_LOW, QUEUE_AVAIL_HIGH, q.avail),
            (QUEUE_USED_LOW, QUEUE_USED_HIGH, q.used),
        ] {
            self.set(low, addr as u32);
            self.set(high, (addr >> 32) as u32);
        }
        self.set(QUEUE_READY, 1);
        Ok(())
    }
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Host-initiated, to the listening port: echo everything.
    Echo,
    /// Host-initiated, to the stop port: end the echo service.
    Stop,
    /// Ours, to the host's port: send the test data, check the reply.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// REQUEST sent, RESPONSE awaited (our connection).
    Connecting,
    Established,
    /// We sent SHUTDOWN with both flags; the host's RST is awaited.
    Closing,
}

/// One stream connection, in slot `n` (its receive buffer at
/// `CONN_BUFS + n * BUF_ALLOC`). Counters wrap at 2^32, as on the wire.
#[derive(Clone, Copy)]
struct Conn {
    role: Role,
    state: State,
    local_port: u32,
    peer_port: u32,
    buf: u64,
    /// Receive side: bytes received, consumed (`fwd_cnt`), and the
    /// `fwd_cnt` last told to the host.
    rx_cnt: u32,
    fwd_cnt: u32,
    fwd_told: u32,
    /// Send side: the host's buffer and consumption, and bytes we sent.
    peer_buf_alloc: u32,
    peer_fwd_cnt: u32,
    tx_cnt: u32,
    credit_requested: bool,
    peer_shutdown: u32,
    /// Control packets owed to the host.
    want_request: bool,
    want_response: bool,
    want_credit_update: bool,
    want_shutdown: u32,
    want_rst: bool,
    shutdown_sent: u32,
    /// Why we reset the connection, if it was an error.
    error: Option<&'static str>,
    /// Client: bytes to send, sent, received; first mismatching offset.
    to_send: u64,
    sent: u64,
    received: u64,
    mismatch: Option<u64>,
}

impl Conn {
    fn new(role: Role, state: State, local_port: u32, peer_port: u32, buf: u64) -> Self {
        Self {
            role,
            state,
            local_port,
            peer_port,
            buf,
            rx_cnt: 0,
            fwd_cnt: 0,
            fwd_told: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
            credit_requested: false,
            peer_shutdown: 0,
            want_request: false,
            want_response: false,
            want_credit_update: false,
            want_shutdown: 0,
            want_rst: false,
            shutdown_sent: 0,
            error: None,
            to_send: 0,
            sent: 0,
            received: 0,
            mismatch: None,
        }
    }

    /// Bytes the host can still take from us.
    fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    fn buffered(&self) -> u32 {
        self.rx_cnt.wrapping_sub(self.fwd_cnt)
    }

    /// A header from us for `op`; records the `fwd_cnt` told.
    fn header(&mut self, cid: u64, op: u16, flags: u32, len: u32) -> Header {
        self.fwd_told = self.fwd_cnt;
        Header {
            src_cid: cid,
            dst_cid: HOST_CID,
            src_port: self.local_port,
            dst_port: self.peer_port,
            len,
            kind: TYPE_STREAM,
            op,
            flags,
            buf_alloc: BUF_ALLOC,
            fwd_cnt: self.fwd_cnt,
        }
    }

    /// Whether we have data the host's credit stops us from sending.
    fn blocked_on_credit(&self) -> bool {
        let has_data = match self.role {
            Role::Echo => self.buffered() > 0,
            Role::Client => self.sent < self.to_send,
            Role::Stop => false,
        };
        has_data && self.state == State::Established && self.peer_credit() == 0
    }
}

/// The tx queue and its buffers (descriptor `n` owns buffer `n`).
struct Tx {
    q: Virtq,
    /// Bit `n`: buffer `n` is free.
    free: u64,
    /// The rx buffer descriptor `n` sends from instead (echo without a
    /// copy), to give back to the rx queue once the device has read it.
    lent: [Option<u16>; TX_SIZE as usize],
}

impl Tx {
    fn slot(&mut self) -> Option<u16> {
        if self.free == 0 {
            return None;
        }
        let n = self.free.trailing_zeros();
        self.free &= !(1 << n);
        Some(n as u16)
    }

    fn payload(slot: u16) -> u64 {
        TX_BUFS + u64::from(slot) * BUF_SIZE + HEADER_LEN
    }

    /// Queues the packet in `slot` (its payload already at [`Tx::payload`]).
    fn send(&mut self, slot: u16, header: &Header) {
        self.send_from(slot, TX_BUFS + u64::from(slot) * BUF_SIZE, header);
    }

    /// Queues `header` and the payload after it at `at` as descriptor `slot`.
    fn send_from(&mut self, slot: u16, at: u64, header: &Header) {
        header.store(at);
        self.q.set_desc(slot, at, HEADER_LEN as u32 + header.len, 0);
        self.q.push(slot);
    }

    /// Queues a control packet (no payload) for `conn`; `false` if no
    /// buffer is free.
    fn control(&mut self, cid: u64, conn: &mut Conn, op: u16, flags: u32) -> bool {
        let Some(slot) = self.slot() else {
            return false;
        };
        let header = conn.header(cid, op, flags, 0);
        self.send(slot, &header);
        true
    }
}

/// What the guest's own connection ended with.
#[derive(Clone, Copy, Debug)]
struct ClientOutcome {
    sent: u64,
    received: u64,
    mismatch: Option<u64>,
    error: Option<&'static str>,
}

/// The driver and the connections it serves.
struct Vsock {
    mmio: Mmio,
    cid: u64,
    rx: Virtq,
    /// rx buffers lent to tx descriptors.
    lent: u16,
    tx: Tx,
    conns: [Option<Conn>; MAX_CONNS],
    /// Bit `n`: connection `n` may have packets to send ([`RESETS`]: a
    /// RST is owed); `fresh`: a bit was set since the last [`Vsock::pump`].
    pump_mask: u32,
    fresh: bool,
    /// RSTs owed for packets of unknown connections.
    resets: [Option<Header>; 8],
    listen: Option<u32>,
    stop: Option<u32>,
    stop_requested: bool,
    client: Option<ClientOutcome>,
    /// Open echo connections, and whether ours is.
    echo_open: u32,
    client_open: bool,
    /// The connection the last packet was for (`MAX_CONNS`: none).
    last: usize,
    /// Echo statistics.
    served: u32,
    most_at_once: u32,
    echoed: u64,
    echoed_in_place: u64,
    /// Unexpected packets seen, and the first one's description.
    errors: u32,
    first_error: Option<(&'static str, Header)>,
}

impl Vsock {
    /// Resets and initialises the device (virtio 1.2, 3.1.1), posts every
    /// rx and event buffer; returns the driver with the CID from config space.
    fn init(base: u64) -> Result<Self, &'static str> {
        let mmio = Mmio(base);
        mmio.set(STATUS, 0);
        mmio.set(STATUS, ACKNOWLEDGE | DRIVER);
        mmio.set(DEVICE_FEATURES_SEL, 1);
        if mmio.get(DEVICE_FEATURES) & 1 == 0 {
            return Err("no VIRTIO_F_VERSION_1");
        }
        mmio.set(DRIVER_FEATURES_SEL, 1);
        mmio.set(DRIVER_FEATURES, 1);
        mmio.set(DRIVER_FEATURES_SEL, 0);
        mmio.set(DRIVER_FEATURES, 0);
        mmio.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        if mmio.get(STATUS) & FEATURES_OK == 0 {
            return Err("FEATURES_OK refused");
        }
        for addr in (REGION..RINGS_END).step_by(8) {
            write(addr, 0u64);
        }
        let mut rx = Virtq::new(RX, RX_SIZE, RX_RING);
        let mut tx = Virtq::new(TX, TX_SIZE, TX_RING);
        let mut event = Virtq::new(EVENT, EVENT_SIZE, EVENT_RING);
        for id in 0..RX_SIZE {
            rx.set_desc(
                id,
                RX_BUFS + u64::from(id) * BUF_SIZE,
                BUF_SIZE as u32,
                F_WRITE,
            );
            rx.push(id);
        }
        for id in 0..EVENT_SIZE {
            event.set_desc(id, EVENT_BUFS + u64::from(id) * 8, 8, F_WRITE);
            event.push(id);
        }
        for q in [&mut rx, &mut tx, &mut event] {
            write(q.avail, AVAIL_F_NO_INTERRUPT);
            q.publish();
            mmio.setup_queue(q)?;
        }
        let cid = u64::from(mmio.get(CONFIG)) | u64::from(mmio.get(CONFIG + 4)) << 32;
        mmio.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        mmio.notify(RX);
        mmio.notify(EVENT);
        Ok(Self {
            mmio,
            cid,
            rx,
            lent: 0,
            tx: Tx {
                q: tx,
                free: u64::MAX >> (64 - TX_SIZE),
                lent: [None; TX_SIZE as usize],
            },
            conns: [None; MAX_CONNS],
            pump_mask: 0,
            fresh: false,
            resets: [None; 8],
            listen: None,
            stop: None,
            stop_requested: false,
            client: None,
            echo_open: 0,
            client_open: false,
            last: MAX_CONNS,
            served: 0,
            most_at_once: 0,
            echoed: 0,
            echoed_in_place: 0,
            errors: 0,
            first_error: None,
        })
    }

    /// Marks connection `n` (or [`RESETS`]) for the next [`Vsock::pump`].
    fn wake(&mut self, n: usize) {
        self.pump_mask |= 1 << n;
        self.fresh = true;
    }

    fn error(&mut self, what: &'static str, header: &Header) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((what, *header));
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.conns.iter().position(Option::is_none)
    }

    fn open(&self) -> u32 {
        self.conns.iter().flatten().count() as u32
    }

    /// Starts our connection to host `port`.
    fn connect(&mut self, port: u32, send: u64) {
        let Some(n) = self.free_slot() else {
            return;
        };
        let buf = CONN_BUFS + n as u64 * u64::from(BUF_ALLOC);
        let mut conn = Conn::new(Role::Client, State::Connecting, CLIENT_PORT, port, buf);
        conn.to_send = send;
        conn.want_request = true;
        self.client_open = true;
        self.conns[n] = Some(conn);
        self.wake(n);
    }

    /// Answers a packet of no connection with RST (unless it is one).
    fn reset_unknown(&mut self, h: &Header) {
        if h.op == OP_RST {
            return;
        }
        let rst = Header {
            src_cid: self.cid,
            dst_cid: h.src_cid,
            src_port: h.dst_port,
            dst_port: h.src_port,
            kind: h.kind,
            op: OP_RST,
            ..Header::default()
        };
        if let Some(free) = self.resets.iter_mut().find(|r| r.is_none()) {
            *free = Some(rst);
            self.wake(RESETS);
        }
    }

    /// Ends connection `n`; a client connection leaves its outcome.
    fn finish(&mut self, n: usize, error: Option<&'static str>) {
        let Some(conn) = self.conns[n].take() else {
            return;
        };
        if conn.role == Role::Echo {
            self.echo_open -= 1;
        }
        if self.last == n {
            self.last = MAX_CONNS;
        }
        if conn.role == Role::Client {
            self.client_open = false;
            self.client = Some(ClientOutcome {
                sent: conn.sent,
                received: conn.received,
                mismatch: conn.mismatch,
                error,
            });
        }
    }

    /// Handles the packet in rx buffer `id` at `at` (`len` bytes written);
    /// `true` if the buffer was lent to a tx descriptor (echoed as it is).
    fn receive(&mut self, id: u16, at: u64, len: u32) -> bool {
        if u64::from(len) < HEADER_LEN {
            self.error("rx packet shorter than a header", &Header::default());
            return false;
        }
        let h = Header::load(at);
        let payload = at + HEADER_LEN;
        if u64::from(h.len) > u64::from(len) - HEADER_LEN {
            self.error("rx payload longer than the buffer written", &h);
            return false;
        }
        if h.src_cid != HOST_CID || h.dst_cid != self.cid {
            self.error("packet for another CID", &h);
            return false;
        }
        if h.kind != TYPE_STREAM {
            self.error("not a stream packet", &h);
            self.reset_unknown(&h);
            return false;
        }
        let is_it = |c: &Option<Conn>| {
            c.is_some_and(|c| c.local_port == h.dst_port && c.peer_port == h.src_port)
        };
        let found = match self.conns.get(self.last) {
            Some(c) if is_it(c) => Some(self.last),
            _ => self.conns.iter().position(is_it),
        };
        let Some(n) = found else {
            self.new_connection(&h);
            return false;
        };
        self.last = n;
        let Some(conn) = self.conns[n].as_mut() else {
            return false;
        };
        conn.peer_buf_alloc = h.buf_alloc;
        conn.peer_fwd_cnt = h.fwd_cnt;
        if h.op == OP_RW
            && conn.role == Role::Echo
            && conn.state == State::Established
            && conn.peer_shutdown & SHUTDOWN_SEND == 0
            && conn.buffered() == 0
            && conn.peer_credit() >= h.len
            && self.lent < RX_SIZE / 2
        {
            if let Some(slot) = self.tx.slot() {
                // Nothing queued before it and room at the host: echo this
                // very buffer, its header rewritten; no copy, and nothing
                // else for the connection to send.
                conn.rx_cnt = conn.rx_cnt.wrapping_add(h.len);
                conn.fwd_cnt = conn.rx_cnt;
                conn.tx_cnt = conn.tx_cnt.wrapping_add(h.len);
                let header = conn.header(self.cid, OP_RW, 0, h.len);
                self.tx.send_from(slot, at, &header);
                self.tx.lent[usize::from(slot)] = Some(id);
                self.lent += 1;
                self.echoed += u64::from(h.len);
                self.echoed_in_place += u64::from(h.len);
                return true;
            }
        }
        self.pump_mask |= 1 << n;
        self.fresh = true;
        match (h.op, conn.state) {
            (OP_RST, State::Closing) => self.finish(n, None),
            // The host shut both ways, then gave up waiting for our RST
            // (its close timeout): a normal end, nothing was lost.
            (OP_RST, _) if conn.peer_shutdown & SHUTDOWN_BOTH == SHUTDOWN_BOTH => {
                self.finish(n, None)
            }
            (OP_RST, _) => {
                let role = conn.role;
                self.finish(n, Some("reset by the host"));
                if role != Role::Client {
                    self.error("RST on an open connection", &h);
                }
            }
            (OP_RESPONSE, State::Connecting) => conn.state = State::Established,
            (OP_RW, State::Established) if conn.peer_shutdown & SHUTDOWN_SEND == 0 => {
                if h.len > BUF_ALLOC - conn.buffered() {
                    conn.want_rst = true;
                    conn.error = Some("host overran our credit");
                    self.error("host overran our credit", &h);
                    return false;
                }
                match conn.role {
                    Role::Echo => {
                        let start = conn.rx_cnt % BUF_ALLOC;
                        let first = h.len.min(BUF_ALLOC - start);
                        copy(payload, conn.buf + u64::from(start), first);
                        copy(payload + u64::from(first), conn.buf, h.len - first);
                        conn.rx_cnt = conn.rx_cnt.wrapping_add(h.len);
                    }
                    Role::Client | Role::Stop => {
                        // Consumed at once; the client's checked against
                        // the pattern.
                        if conn.role == Role::Client && conn.mismatch.is_none() {
                            conn.mismatch = pattern_mismatch(b'h', conn.received, payload, h.len);
                        }
                        conn.received += u64::from(h.len);
                        conn.rx_cnt = conn.rx_cnt.wrapping_add(h.len);
                        conn.fwd_cnt = conn.rx_cnt;
                    }
                }
            }
            (OP_RW, State::Closing) => {}
            (OP_CREDIT_UPDATE, _) => {}
            (OP_CREDIT_REQUEST, _) => conn.want_credit_update = true,
            (OP_SHUTDOWN, _) => {
                conn.peer_shutdown |= h.flags & SHUTDOWN_BOTH;
                if conn.peer_shutdown & SHUTDOWN_BOTH == SHUTDOWN_BOTH {
                    // The host neither sends nor receives any more: done.
                    conn.want_rst = true;
                }
            }
            _ => {
                conn.want_rst = true;
                conn.error = Some("unexpected packet");
                self.error("unexpected op for the connection's state", &h);
            }
        }
        false
    }

    /// A packet of no connection: a REQUEST to a port we serve is accepted.
    fn new_connection(&mut self, h: &Header) {
        let role = match h.op {
            OP_REQUEST if Some(h.dst_port) == self.listen => Role::Echo,
            OP_REQUEST if Some(h.dst_port) == self.stop => Role::Stop,
            OP_RST => return,
            _ => {
                self.error("packet for no connection", h);
                self.reset_unknown(h);
                return;
            }
        };
        let Some(n) = self.free_slot() else {
            // Refused: every slot is busy (a RST, as Linux does).
            self.reset_unknown(h);
            return;
        };
        let buf = CONN_BUFS + n as u64 * u64::from(BUF_ALLOC);
        let mut conn = Conn::new(role, State::Established, h.dst_port, h.src_port, buf);
        conn.peer_buf_alloc = h.buf_alloc;
        conn.peer_fwd_cnt = h.fwd_cnt;
        conn.want_response = true;
        self.conns[n] = Some(conn);
        self.wake(n);
        match role {
            Role::Echo => {
                self.served += 1;
                self.echo_open += 1;
                self.most_at_once = self.most_at_once.max(self.echo_open);
            }
            Role::Stop => self.stop_requested = true,
            Role::Client => {}
        }
    }

    /// Takes every used rx buffer, handles its packet and gives it back;
    /// returns whether any came.
    fn poll_rx(&mut self) -> bool {
        let mut any = false;
        while let Some((id, len)) = self.rx.pop_used() {
            if !self.receive(id, RX_BUFS + u64::from(id) * BUF_SIZE, len) {
                self.rx.push(id);
            }
            any = true;
        }
        // Giving buffers back in batches saves notifies; the device waits
        // for one only when it used them all, which makes this batch full.
        if self.rx.unpublished() >= RX_SIZE / 4 {
            self.rx.publish();
            self.mmio.notify(RX);
        }
        any
    }

    /// Sends what is owed and what the host's credit allows: control
    /// packets, echo data, our client's data; returns whether any went.
    fn pump(&mut self) -> bool {
        let cid = self.cid;
        let mut any = false;
        self.fresh = false;
        if self.pump_mask & 1 << RESETS != 0 {
            for i in 0..self.resets.len() {
                let Some(rst) = self.resets[i] else { continue };
                let Some(slot) = self.tx.slot() else { break };
                self.tx.send(slot, &rst);
                self.resets[i] = None;
                any = true;
            }
            if self.resets.iter().all(Option::is_none) {
                self.pump_mask &= !(1 << RESETS);
            }
        }
        let mut closed = 0u32;
        let mut mask = self.pump_mask & !(1 << RESETS);
        while mask != 0 {
            let n = mask.trailing_zeros() as usize;
            mask &= !(1 << n);
            let Some(conn) = self.conns[n].as_mut() else {
                self.pump_mask &= !(1 << n);
                continue;
            };
            let before = conn.tx_cnt;
            let (sent, close) = Self::pump_conn(&mut self.tx, cid, conn);
            any |= sent;
            if conn.role == Role::Echo {
                self.echoed += u64::from(conn.tx_cnt.wrapping_sub(before));
            }
            if close {
                closed |= 1 << n;
            }
            if close || self.tx.free != 0 {
                // Done for now; with no tx buffer left it may have more,
                // and is pumped again when buffers come back.
                self.pump_mask &= !(1 << n);
            }
        }
        while closed != 0 {
            let n = closed.trailing_zeros() as usize;
            closed &= !(1 << n);
            let error = self.conns[n].and_then(|c| c.error);
            self.finish(n, error);
        }
        if self.tx.q.unpublished() > 0 {
            self.tx.q.publish();
            self.mmio.notify(TX);
        }
        any
    }

    /// One connection's share of [`Vsock::pump`]: (sent any, connection over).
    fn pump_conn(tx: &mut Tx, cid: u64, conn: &mut Conn) -> (bool, bool) {
        if conn.want_rst {
            let sent = tx.control(cid, conn, OP_RST, 0);
            return (sent, sent);
        }
        let mut any = false;
        if conn.want_request && tx.control(cid, conn, OP_REQUEST, 0) {
            conn.want_request = false;
            any = true;
        }
        if conn.want_response && tx.control(cid, conn, OP_RESPONSE, 0) {
            conn.want_response = false;
            any = true;
        }
        if conn.want_credit_update && tx.control(cid, conn, OP_CREDIT_UPDATE, 0) {
            conn.want_credit_update = false;
            any = true;
        }
        if conn.peer_credit() > 0 {
            // Asked once each time the credit runs out: the host sends a
            // CREDIT_UPDATE by itself as its buffer drains.
            conn.credit_requested = false;
        }
        if conn.state == State::Established {
            any |= Self::send_data(tx, cid, conn);
            if conn.blocked_on_credit() && !conn.credit_requested {
                conn.credit_requested = tx.control(cid, conn, OP_CREDIT_REQUEST, 0);
                any |= conn.credit_requested;
            }
            if conn.role == Role::Client && conn.sent == conn.to_send {
                conn.want_shutdown |= SHUTDOWN_SEND;
            }
            let nothing_left = match conn.role {
                Role::Echo => conn.buffered() == 0,
                Role::Client => conn.sent == conn.to_send,
                Role::Stop => false,
            };
            if conn.peer_shutdown & SHUTDOWN_SEND != 0 && nothing_left {
                // The host sends no more (it may have only half-closed)
                // and we have nothing left for it: close, as a Linux
                // application does once it read EOF and answered.
                conn.want_shutdown = SHUTDOWN_BOTH;
            }
        }
        let flags = conn.want_shutdown | conn.shutdown_sent;
        if flags != conn.shutdown_sent && tx.control(cid, conn, OP_SHUTDOWN, flags) {
            conn.shutdown_sent = flags;
            if flags == SHUTDOWN_BOTH {
                conn.state = State::Closing;
            }
            any = true;
        }
        if conn.fwd_cnt.wrapping_sub(conn.fwd_told) >= CREDIT_UPDATE_AFTER {
            any |= tx.control(cid, conn, OP_CREDIT_UPDATE, 0);
        }
        (any, false)
    }

    /// Sends data as far as the host's credit and our tx buffers go: echo
    /// bytes from the connection's buffer, or the client's pattern.
    fn send_data(tx: &mut Tx, cid: u64, conn: &mut Conn) -> bool {
        let mut any = false;
        loop {
            let credit = conn.peer_credit().min(TX_PAYLOAD);
            let n = match conn.role {
                Role::Echo => {
                    let start = conn.fwd_cnt % BUF_ALLOC;
                    conn.buffered().min(BUF_ALLOC - start).min(credit)
                }
                Role::Client => (conn.to_send - conn.sent).min(u64::from(credit)) as u32,
                Role::Stop => 0,
            };
            if n == 0 {
                return any;
            }
            let Some(slot) = tx.slot() else {
                return any;
            };
            let to = Tx::payload(slot);
            if conn.role == Role::Echo {
                copy(conn.buf + u64::from(conn.fwd_cnt % BUF_ALLOC), to, n);
                conn.fwd_cnt = conn.fwd_cnt.wrapping_add(n);
            } else {
                fill_pattern(b'g', conn.sent, to, n);
                conn.sent += u64::from(n);
            }
            conn.tx_cnt = conn.tx_cnt.wrapping_add(n);
            let header = conn.header(cid, OP_RW, 0, n);
            tx.send(slot, &header);
            any = true;
        }
    }

    /// Whether the work asked for is done: the client finished, and the
    /// stop connection came with no echo connection left open.
    fn done(&self) -> bool {
        let client_done = !self.client_open;
        let echo_done = self.listen.is_none() || (self.stop_requested && self.echo_open == 0);
        client_done && echo_done
    }

    /// One round: tx buffers back, rx packets in, packets out.
    fn poll(&mut self) -> bool {
        if !self.fresh && !self.tx.q.has_used() && !self.rx.has_used() {
            return false;
        }
        let mut progress = false;
        // tx buffers back; rx buffers lent to them go back to the rx queue.
        while let Some((id, _)) = self.tx.q.pop_used() {
            self.tx.free |= 1 << id;
            if let Some(rx_id) = self.tx.lent[usize::from(id)].take() {
                self.rx.push(rx_id);
                self.lent -= 1;
            }
            progress = true;
        }
        progress |= self.poll_rx();
        // Packets go out for the connections that asked ([`Vsock::wake`]),
        // again when tx buffers came back.
        if self.pump_mask != 0 && (progress || self.fresh) {
            progress |= self.pump();
        } else if self.tx.q.unpublished() > 0 {
            // Echoed rx buffers.
            self.tx.q.publish();
            self.mmio.notify(TX);
        }
        progress
    }

    /// Serves until [`Vsock::done`], then closes the stop connection.
    fn run(&mut self) {
        while !self.done() {
            // The state changes only when something happened; waiting
            // for it reads the two used indexes and nothing else.
            while !self.fresh && !self.tx.q.has_used() && !self.rx.has_used() {
                core::hint::spin_loop();
            }
            self.poll();
        }
        for conn in self.conns.iter_mut().flatten() {
            if conn.role == Role::Stop {
                conn.want_shutdown = SHUTDOWN_BOTH;
            }
        }
        for n in 0..MAX_CONNS {
            self.wake(n);
        }
        let mut idle = 0;
        while self.open() > 0 && idle < CLOSE_POLLS {
            if self.poll() {
                idle = 0;
            } else {
                idle += 1;
                core::hint::spin_loop();
            }
        }
    }
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
