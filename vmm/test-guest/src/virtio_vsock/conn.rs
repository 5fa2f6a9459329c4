//! One stream connection: what it is for, where it stands, and its credit
//! accounting both ways (`buf_alloc`/`fwd_cnt`: the host's buffer that
//! limits what we send, ours that limits what the host sends).

use super::header::{Header, HOST_CID, TYPE_STREAM};
use super::layout::BUF_ALLOC;

/// Consumed bytes after which the host is told (CREDIT_UPDATE) even if no
/// data packet carries the news.
pub const CREDIT_UPDATE_AFTER: u32 = BUF_ALLOC / 4;

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Host-initiated, to the listening port: echo everything.
    Echo,
    /// Host-initiated, to the stop port: end the echo service.
    Stop,
    /// Ours, to the host's port: send the test data, check the reply.
    Client,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// REQUEST sent, RESPONSE awaited (our connection).
    Connecting,
    Established,
    /// We sent SHUTDOWN with both flags; the host's RST is awaited.
    Closing,
}

/// One stream connection, in slot `n` (its receive buffer at
/// `CONN_BUFS + n * BUF_ALLOC`). Counters wrap at 2^32, as on the wire.
#[derive(Clone, Copy)]
pub struct Conn {
    pub role: Role,
    pub state: State,
    pub local_port: u32,
    pub peer_port: u32,
    pub buf: u64,
    /// Receive side: bytes received, consumed (`fwd_cnt`), and the
    /// `fwd_cnt` last told to the host.
    pub rx_cnt: u32,
    pub fwd_cnt: u32,
    pub fwd_told: u32,
    /// Send side: the host's buffer and consumption, and bytes we sent.
    pub peer_buf_alloc: u32,
    pub peer_fwd_cnt: u32,
    pub tx_cnt: u32,
    pub credit_requested: bool,
    pub peer_shutdown: u32,
    /// Control packets owed to the host.
    pub want_request: bool,
    pub want_response: bool,
    pub want_credit_update: bool,
    pub want_shutdown: u32,
    pub want_rst: bool,
    pub shutdown_sent: u32,
    /// Why we reset the connection, if it was an error.
    pub error: Option<&'static str>,
    /// Client: bytes to send, sent, received; first mismatching offset.
    pub to_send: u64,
    pub sent: u64,
    pub received: u64,
    pub mismatch: Option<u64>,
}

impl Conn {
    pub fn new(role: Role, state: State, local_port: u32, peer_port: u32, buf: u64) -> Self {
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
    pub fn peer_credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    pub fn buffered(&self) -> u32 {
        self.rx_cnt.wrapping_sub(self.fwd_cnt)
    }

    /// A header from us for `op`; records the `fwd_cnt` told.
    pub fn header(&mut self, cid: u64, op: u16, flags: u32, len: u32) -> Header {
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
    // `#[inline]`: asked on every pump, from `send.rs` (another codegen
    // unit).
    #[inline]
    pub fn blocked_on_credit(&self) -> bool {
        let has_data = match self.role {
            Role::Echo => self.buffered() > 0,
            Role::Client => self.sent < self.to_send,
            Role::Stop => false,
        };
        has_data && self.state == State::Established && self.peer_credit() == 0
    }
}
