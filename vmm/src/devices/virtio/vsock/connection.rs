//! One vsock stream connection between a guest port and a host Unix
//! socket: its state, the credit-based flow control of both directions
//! (virtio 1.2, 5.10.6.3) and the bytes the host socket has not taken yet.
//!
//! Guest → host: the guest may send at most our `buf_alloc` bytes beyond
//! what we reported forwarded (`fwd_cnt`); bytes the host socket does not
//! take at once wait here, so this buffer is bounded by `buf_alloc` and a
//! guest overrunning it is reset. Host → guest: we read from the host
//! socket only as much as the guest has credit for, so nothing is buffered
//! on that side.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::num::Wrapping;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::packet::Header;
use super::{
    CONN_BUF_ALLOC, CREDIT_UPDATE_THRESHOLD, HOST_CID, VIRTIO_VSOCK_SHUTDOWN_RCV,
    VIRTIO_VSOCK_SHUTDOWN_SEND, VIRTIO_VSOCK_TYPE_STREAM,
};

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The host asked (`CONNECT <port>`); REQUEST sent, RESPONSE awaited.
    LocalInit,
    /// Both sides may exchange data.
    Established,
    /// Both sides are done and we sent SHUTDOWN both ways; the guest's RST
    /// is awaited.
    Closing,
}

/// What reading the host socket gave.
#[derive(Debug, PartialEq, Eq)]
pub enum HostRead {
    /// Bytes for the guest.
    Data(Vec<u8>),
    /// Nothing now.
    WouldBlock,
    /// The host side closed (or failed).
    Closed,
}

/// A connection, keyed by (host port, guest port).
pub struct Connection {
    pub stream: UnixStream,
    pub local_port: u32,
    pub peer_port: u32,
    pub guest_cid: u64,
    pub state: State,
    /// Deadline for LocalInit / Closing.
    pub expires: Option<Instant>,
    /// The guest's receive buffer and what it reported consumed.
    peer_buf_alloc: u32,
    peer_fwd_cnt: Wrapping<u32>,
    /// Bytes sent to the guest.
    rx_cnt: Wrapping<u32>,
    /// Bytes of the guest's written to the host socket.
    fwd_cnt: Wrapping<u32>,
    /// `fwd_cnt` last told to the guest.
    fwd_cnt_sent: Wrapping<u32>,
    /// A CREDIT_UPDATE waits in the muxer's replies (so no second one is
    /// queued while the guest has no rx buffers).
    pub credit_update_queued: bool,
    /// Guest bytes the host socket has not taken yet.
    pending: VecDeque<u8>,
    /// SHUTDOWN flags the guest sent.
    pub peer_shutdown: u32,
    /// The host socket reached EOF.
    pub host_closed: bool,
    /// The epoll events the host socket is registered for (0: not in epoll).
    pub interest: u32,
    /// Waiting in the muxer's list of readable host sockets.
    pub in_ready: bool,
}

impl Connection {
    /// A connection over `stream` (non-blocking).
    pub fn new(
        stream: UnixStream,
        local_port: u32,
        peer_port: u32,
        guest_cid: u64,
        state: State,
    ) -> Self {
        Self {
            stream,
            local_port,
            peer_port,
            guest_cid,
            state,
            expires: None,
            peer_buf_alloc: 0,
            peer_fwd_cnt: Wrapping(0),
            rx_cnt: Wrapping(0),
            fwd_cnt: Wrapping(0),
            fwd_cnt_sent: Wrapping(0),
            credit_update_queued: false,
            pending: VecDeque::new(),
            peer_shutdown: 0,
            host_closed: false,
            interest: 0,
            in_ready: false,
        }
    }

    /// Takes the guest's view of its receive buffer from any packet.
    pub fn update_peer_credit(&mut self, header: &Header) {
        self.peer_buf_alloc = header.buf_alloc;
        self.peer_fwd_cnt = Wrapping(header.fwd_cnt);
    }

    /// How many bytes the guest can take now.
    pub fn peer_credit(&self) -> u32 {
        let in_flight = (self.rx_cnt - self.peer_fwd_cnt).0;
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// A header from us to the guest for `op`, with our credit; records the
    /// `fwd_cnt` told.
    pub fn header(&mut self, op: u16, flags: u32) -> Header {
        self.fwd_cnt_sent = self.fwd_cnt;
        Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: self.local_port,
            dst_port: self.peer_port,
            len: 0,
            kind: VIRTIO_VSOCK_TYPE_STREAM,
            op,
            flags,
            buf_alloc: CONN_BUF_ALLOC,
            fwd_cnt: self.fwd_cnt.0,
        }
    }

    /// Whether the guest should hear about freed buffer space (and no
    /// CREDIT_UPDATE is queued already).
    pub fn needs_credit_update(&self) -> bool {
        !self.credit_update_queued
            && (self.fwd_cnt - self.fwd_cnt_sent).0 >= CREDIT_UPDATE_THRESHOLD
    }

    /// Whether to poll the host socket for input.
    pub fn wants_read(&self) -> bool {
        self.state == State::Established
            && !self.host_closed
            && self.peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV == 0
            && self.peer_credit() > 0
    }

    /// Whether guest bytes wait for the host socket.
    pub fn wants_write(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether the connection is done: the guest will send nothing more,
    /// everything it sent reached the host, and the host side closed or the
    /// guest will not receive.
    pub fn finished(&self) -> bool {
        let send_done = self.peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND != 0;
        let rcv_done = self.peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_RCV != 0 || self.host_closed;
        send_done && rcv_done && self.pending.is_empty()
    }

    /// Takes guest payload for the host socket. `Err` if the guest sent more
    /// than its credit allowed or the host socket failed: reset.
    pub fn send_to_host(&mut self, payload: &[u8]) -> std::io::Result<()> {
        if self.pending.len() + payload.len() > CONN_BUF_ALLOC as usize {
            return Err(std::io::Error::other("guest overran its credit"));
        }
        self.pending.extend(payload);
        self.flush_to_host()
    }

    /// Writes pending guest bytes to the host socket until it would block.
    pub fn flush_to_host(&mut self) -> std::io::Result<()> {
        while !self.pending.is_empty() {
            let (front, _) = self.pending.as_slices();
            match self.stream.write(front) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.pending.drain(..n);
                    self.fwd_cnt += Wrapping(n as u32);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.peer_shutdown & VIRTIO_VSOCK_SHUTDOWN_SEND != 0 {
            let _ = self.stream.shutdown(std::net::Shutdown::Write);
        }
        Ok(())
    }

    /// Reads at most `room` bytes (and no more than the guest's credit)
    /// from the host socket.
    pub fn read_from_host(&mut self, room: usize) -> HostRead {
        let max = room.min(self.peer_credit() as usize);
        if max == 0 {
            return HostRead::WouldBlock;
        }
        let mut buf = vec![0u8; max];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.host_closed = true;
                    return HostRead::Closed;
                }
                Ok(n) => {
                    buf.truncate(n);
                    self.rx_cnt += Wrapping(n as u32);
                    return HostRead::Data(buf);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return HostRead::WouldBlock,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.host_closed = true;
                    return HostRead::Closed;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::vsock::VIRTIO_VSOCK_OP_CREDIT_UPDATE;

    fn pair() -> (Connection, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Connection::new(a, 1 << 30, 1024, 3, State::Established), b)
    }

    #[test]
    fn host_reads_are_bounded_by_the_guests_credit() {
        let (mut conn, mut host) = pair();
        host.write_all(&[7u8; 100]).unwrap();
        assert!(!conn.wants_read(), "no credit before the guest says so");
        assert_eq!(conn.read_from_host(4096), HostRead::WouldBlock);
        let mut h = Header {
            buf_alloc: 30,
            ..Header::default()
        };
        conn.update_peer_credit(&h);
        assert_eq!(conn.read_from_host(4096), HostRead::Data(vec![7; 30]));
        assert_eq!(conn.peer_credit(), 0);
        assert!(!conn.wants_read());
        h.fwd_cnt = 30;
        conn.update_peer_credit(&h);
        assert_eq!(conn.read_from_host(10), HostRead::Data(vec![7; 10]));
        drop(host);
        h.buf_alloc = 1000;
        h.fwd_cnt = 40;
        conn.update_peer_credit(&h);
        assert_eq!(conn.read_from_host(4096), HostRead::Data(vec![7; 60]));
        assert_eq!(conn.read_from_host(4096), HostRead::Closed);
        assert!(conn.host_closed && !conn.wants_read());
    }

    #[test]
    fn guest_bytes_are_forwarded_and_counted_and_overruns_refused() {
        let (mut conn, mut host) = pair();
        conn.send_to_host(b"hello").unwrap();
        let mut got = [0u8; 5];
        host.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(conn.header(0, 0).fwd_cnt, 5);
        assert!(!conn.needs_credit_update());
        let too_much = vec![0u8; CONN_BUF_ALLOC as usize + 1];
        assert!(conn.send_to_host(&too_much).is_err());
    }

    #[test]
    fn a_slow_host_socket_keeps_bytes_pending_until_it_drains() {
        let (mut conn, mut host) = pair();
        let chunk = vec![1u8; 64 * 1024];
        let mut sent = 0;
        while !conn.wants_write() {
            conn.send_to_host(&chunk).unwrap();
            sent += chunk.len();
        }
        let mut drained = 0;
        let mut buf = vec![0u8; 64 * 1024];
        while drained < sent {
            drained += host.read(&mut buf).unwrap();
            conn.flush_to_host().unwrap();
        }
        assert!(!conn.wants_write());
        assert!(conn.needs_credit_update());
        assert_eq!(
            conn.header(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0).fwd_cnt as usize,
            sent
        );
        assert!(!conn.needs_credit_update());
    }
}
