//! The driver and the connections it serves: the device brought up
//! (features, queues, the CID from config space) and the state the receive
//! and send paths share, with the bookkeeping both use (waking a
//! connection for the next pump, recording unexpected packets, opening
//! and ending connections).

use super::conn::{Conn, Role, State};
use super::header::Header;
use super::layout::{
    BUF_ALLOC, BUF_SIZE, CONN_BUFS, EVENT, EVENT_BUFS, EVENT_RING, EVENT_SIZE, MAX_CONNS, REGION,
    RINGS_END, RX, RX_BUFS, RX_RING, RX_SIZE, TX, TX_RING, TX_SIZE,
};
use super::mem::write;
use super::mmio::Mmio;
use super::tx::Tx;
use super::virtq::{Virtq, AVAIL_F_NO_INTERRUPT, F_WRITE};
use crate::virtio_mmio::*;

/// The bit of `Vsock::pump_mask` for RSTs owed.
pub const RESETS: usize = 31;
/// The guest's port for its own connection.
const CLIENT_PORT: u32 = 49152;

/// What the guest's own connection ended with.
#[derive(Clone, Copy, Debug)]
pub struct ClientOutcome {
    pub sent: u64,
    pub received: u64,
    pub mismatch: Option<u64>,
    pub error: Option<&'static str>,
}

/// The driver and the connections it serves.
pub struct Vsock {
    pub mmio: Mmio,
    pub cid: u64,
    pub rx: Virtq,
    /// rx buffers lent to tx descriptors.
    pub lent: u16,
    pub tx: Tx,
    pub conns: [Option<Conn>; MAX_CONNS],
    /// Bit `n`: connection `n` may have packets to send ([`RESETS`]: a
    /// RST is owed); `fresh`: a bit was set since the last [`Vsock::pump`].
    pub pump_mask: u32,
    pub fresh: bool,
    /// RSTs owed for packets of unknown connections.
    pub resets: [Option<Header>; 8],
    pub listen: Option<u32>,
    pub stop: Option<u32>,
    pub stop_requested: bool,
    pub client: Option<ClientOutcome>,
    /// Open echo connections, and whether ours is.
    pub echo_open: u32,
    pub client_open: bool,
    /// The connection the last packet was for (`MAX_CONNS`: none).
    pub last: usize,
    /// Echo statistics.
    pub served: u32,
    pub most_at_once: u32,
    pub echoed: u64,
    pub echoed_in_place: u64,
    /// Unexpected packets seen, and the first one's description.
    pub errors: u32,
    pub first_error: Option<(&'static str, Header)>,
}

impl Vsock {
    /// Resets and initialises the device (virtio 1.2, 3.1.1), posts every
    /// rx and event buffer; returns the driver with the CID from config space.
    pub fn init(base: u64) -> Result<Self, &'static str> {
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
    pub fn wake(&mut self, n: usize) {
        self.pump_mask |= 1 << n;
        self.fresh = true;
    }

    pub fn error(&mut self, what: &'static str, header: &Header) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((what, *header));
        }
    }

    pub fn free_slot(&self) -> Option<usize> {
        self.conns.iter().position(Option::is_none)
    }

    pub fn open(&self) -> u32 {
        self.conns.iter().flatten().count() as u32
    }

    /// Starts our connection to host `port`.
    pub fn connect(&mut self, port: u32, send: u64) {
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

    /// Ends connection `n`; a client connection leaves its outcome.
    pub fn finish(&mut self, n: usize, error: Option<&'static str>) {
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
}
