//! The receive path: used rx buffers taken, each packet matched to its
//! connection (or answered with RST, or accepted as a new connection) and
//! handled; an echoed packet goes back from its own rx buffer when it
//! can, and the buffers return to the rx queue in batches.

use super::conn::{Conn, Role, State};
use super::driver::{Vsock, RESETS};
use super::header::{
    Header, HEADER_LEN, HOST_CID, OP_CREDIT_REQUEST, OP_CREDIT_UPDATE, OP_REQUEST, OP_RESPONSE,
    OP_RST, OP_RW, OP_SHUTDOWN, SHUTDOWN_BOTH, SHUTDOWN_SEND, TYPE_STREAM,
};
use super::layout::{BUF_ALLOC, BUF_SIZE, CONN_BUFS, RX, RX_BUFS, RX_SIZE};
use super::mem::copy;
use super::pattern::pattern_mismatch;

impl Vsock {
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
    pub fn poll_rx(&mut self) -> bool {
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
}
