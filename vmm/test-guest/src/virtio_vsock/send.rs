//! The send path: for each connection woken since the last pump, the
//! control packets it owes (REQUEST, RESPONSE, CREDIT_UPDATE,
//! CREDIT_REQUEST, SHUTDOWN, RST) and the data the host's credit and our
//! tx buffers allow (echo bytes from the connection's buffer, or the
//! client's pattern), and the RSTs owed for packets of no connection;
//! then one notify for all.

use super::conn::{Conn, Role, State, CREDIT_UPDATE_AFTER};
use super::driver::{Vsock, RESETS};
use super::header::{
    OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE, OP_RST, OP_RW, OP_SHUTDOWN,
    SHUTDOWN_BOTH, SHUTDOWN_SEND,
};
use super::layout::{BUF_ALLOC, TX};
use super::mem::copy;
use super::pattern::fill_pattern;
use super::tx::{Tx, TX_PAYLOAD};

impl Vsock {
    /// Sends what is owed and what the host's credit allows: control
    /// packets, echo data, our client's data; returns whether any went.
    pub fn pump(&mut self) -> bool {
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
}
