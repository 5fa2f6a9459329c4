//! The vsock muxer: connections between guest ports and host Unix sockets
//! (Firecracker's hybrid vsock). The host connects to the listening socket
//! and writes `CONNECT <port>\n`; once the guest accepts, it reads
//! `OK <host port>\n`. A guest connecting to port P reaches `<uds>_P`.
//!
//! The host side sits behind [`Backend`] (`backend.rs`) so tests can plug
//! in their own.
//! The muxer has its own epoll fd (listener, handshakes, connections, the
//! timeout timer), which the device event loop polls as one fd.

use std::collections::{HashMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

use super::backend::Backend;
use super::connection::{Connection, HostRead, State};
use super::deadline::Deadline;
use super::packet::{self, Header, TxPacket};
use super::*;

/// (host port, guest port).
type Key = (u32, u32);

/// What an fd in the muxer's epoll is.
enum Target {
    Listener,
    Handshake,
    Conn(Key),
    /// The [`Deadline`] of the earliest timeout.
    Timer,
}

/// A host stream that has not finished its `CONNECT <port>\n` line.
struct Handshake {
    stream: UnixStream,
    line: Vec<u8>,
    expires: Instant,
}

/// A packet waiting for an rx buffer.
enum Reply {
    /// Built when sent, from the connection's state.
    Conn(Key, u16, u32),
    /// Fixed (resets, whose connection is gone).
    Raw(Header),
}

/// The muxer.
pub struct Muxer {
    backend: Box<dyn Backend>,
    guest_cid: u64,
    epoll: Epoll,
    targets: HashMap<RawFd, Target>,
    handshakes: HashMap<RawFd, Handshake>,
    conns: HashMap<Key, Connection>,
    replies: VecDeque<Reply>,
    ready: VecDeque<Key>,
    next_local_port: u32,
    deadline: Deadline,
    /// [`MAX_CONNECTIONS`], lowered by tests.
    max_connections: usize,
    /// The listener is out of the epoll set: accepting failed (e.g. out of
    /// fds), and a level-triggered listener would wake the loop forever.
    /// It comes back when a connection or handshake closes.
    listener_paused: bool,
}

impl Muxer {
    /// A muxer serving the guest `guest_cid` through `backend`.
    pub fn new(backend: Box<dyn Backend>, guest_cid: u64) -> Result<Self> {
        let epoll = Epoll::new().map_err(|e| Error::Io("epoll_create", e))?;
        let deadline = Deadline::new().map_err(|e| Error::Io("timerfd_create", e))?;
        let mut muxer = Self {
            backend,
            guest_cid,
            epoll,
            targets: HashMap::new(),
            handshakes: HashMap::new(),
            conns: HashMap::new(),
            replies: VecDeque::new(),
            ready: VecDeque::new(),
            next_local_port: FIRST_LOCAL_PORT,
            deadline,
            max_connections: MAX_CONNECTIONS,
            listener_paused: false,
        };
        let timer = muxer.deadline.fd();
        muxer.ctl(ControlOperation::Add, timer, EventSet::IN.bits())?;
        muxer.targets.insert(timer, Target::Timer);
        if let Some(fd) = muxer.backend.listener_fd() {
            muxer.ctl(ControlOperation::Add, fd, EventSet::IN.bits())?;
            muxer.targets.insert(fd, Target::Listener);
        }
        Ok(muxer)
    }

    /// The fd to poll: readable when the muxer has work.
    pub fn epoll_fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Packets waiting for rx buffers.
    pub fn backlog(&self) -> usize {
        self.replies.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Lowers the connection limit (tests).
    #[cfg(test)]
    pub fn set_max_connections(&mut self, max: usize) {
        self.max_connections = max;
    }

    /// Whether another connection (or handshake) may open.
    fn room_for_another(&self) -> bool {
        self.conns.len() + self.handshakes.len() < self.max_connections
    }

    /// Takes the listener out of the epoll set until a connection closes.
    fn pause_listener(&mut self) {
        if let Some(fd) = self.backend.listener_fd() {
            if !self.listener_paused && self.ctl(ControlOperation::Delete, fd, 0).is_ok() {
                self.listener_paused = true;
            }
        }
    }

    /// Puts a paused listener back (a connection or handshake closed).
    fn resume_listener(&mut self) {
        if !self.listener_paused {
            return;
        }
        if let Some(fd) = self.backend.listener_fd() {
            if self
                .ctl(ControlOperation::Add, fd, EventSet::IN.bits())
                .is_ok()
            {
                self.listener_paused = false;
            }
        }
    }

    fn ctl(&self, op: ControlOperation, fd: RawFd, events: u32) -> Result<()> {
        let event = EpollEvent::new(EventSet::from_bits_truncate(events), fd as u64);
        self.epoll
            .ctl(op, fd, event)
            .map_err(|e| Error::Io("epoll_ctl", e))
    }

    /// Drops every connection and handshake (the driver reset the device).
    pub fn reset(&mut self) {
        for (fd, _) in self.handshakes.drain() {
            let _ = self
                .epoll
                .ctl(ControlOperation::Delete, fd, EpollEvent::default());
            self.targets.remove(&fd);
        }
        let keys: Vec<Key> = self.conns.keys().copied().collect();
        for key in keys {
            self.close(key);
        }
        self.replies.clear();
        self.ready.clear();
    }

    /// Re-registers a connection's host socket for what it needs now.
    fn rearm(&mut self, key: Key) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let mut want = 0;
        if conn.wants_read() && !conn.in_ready {
            want |= EventSet::IN.bits();
        }
        if conn.wants_write() {
            want |= EventSet::OUT.bits();
        }
        if want == conn.interest {
            return;
        }
        let fd = conn.stream.as_raw_fd();
        let op = match (conn.interest, want) {
            (0, _) => ControlOperation::Add,
            (_, 0) => ControlOperation::Delete,
            _ => ControlOperation::Modify,
        };
        conn.interest = want;
        if let Err(e) = self.ctl(op, fd, want) {
            log::error!("vsock: {e}");
        }
    }

    /// Removes a connection, closing its host socket.
    fn close(&mut self, key: Key) {
        if let Some(conn) = self.conns.remove(&key) {
            let fd = conn.stream.as_raw_fd();
            if conn.interest != 0 {
                let _ = self.ctl(ControlOperation::Delete, fd, 0);
            }
            self.targets.remove(&fd);
            self.resume_listener();
        }
    }

    /// Closes a connection and tells the guest (RST).
    fn reset_conn(&mut self, key: Key) {
        if let Some(conn) = self.conns.get_mut(&key) {
            let header = conn.header(VIRTIO_VSOCK_OP_RST, 0);
            self.replies.push_back(Reply::Raw(header));
        }
        self.close(key);
    }

    /// A RST answering `header` from the guest.
    fn rst_for(&self, header: &Header) -> Reply {
        Reply::Raw(Header {
            src_cid: HOST_CID,
            dst_cid: self.guest_cid,
            src_port: header.dst_port,
            dst_port: header.src_port,
            kind: VIRTIO_VSOCK_TYPE_STREAM,
            op: VIRTIO_VSOCK_OP_RST,
            ..Header::default()
        })
    }

    fn add_conn(&mut self, conn: Connection) {
        let key = (conn.local_port, conn.peer_port);
        self.targets
            .insert(conn.stream.as_raw_fd(), Target::Conn(key));
        self.conns.insert(key, conn);
        self.rearm(key);
    }

    /// Serves what the muxer's epoll reports: new host connections, their
    /// CONNECT lines, readable and writable host sockets; then expires
    /// handshakes and connections past their deadline.
    pub fn process_events(&mut self) {
        let mut events = [EpollEvent::default(); 64];
        let n = self.epoll.wait(0, &mut events).unwrap_or(0);
        for event in &events[..n] {
            let fd = event.data() as RawFd;
            match self.targets.get(&fd) {
                Some(Target::Listener) => self.accept_all(),
                Some(Target::Handshake) => self.read_handshake(fd),
                Some(Target::Conn(key)) => {
                    let key = *key;
                    self.conn_event(key, event.event_set());
                }
                Some(Target::Timer) => self.deadline.fired(),
                None => {}
            }
        }
        self.expire(Instant::now());
        if self.deadline.armed_at().is_none() {
            if let Some(next) = self.next_expiry() {
                self.deadline.schedule(next);
            }
        }
    }

    /// The earliest handshake or connection deadline.
    fn next_expiry(&self) -> Option<Instant> {
        let handshakes = self.handshakes.values().map(|hs| hs.expires);
        let conns = self.conns.values().filter_map(|c| c.expires);
        handshakes.chain(conns).min()
    }

    fn accept_all(&mut self) {
        loop {
            let stream = match self.backend.accept() {
                Ok(Some(stream)) => stream,
                Ok(None) => return,
                Err(e) => {
                    log::warn!(
                        "vsock: accept failed: {e}; not accepting until a connection closes"
                    );
                    self.pause_listener();
                    return;
                }
            };
            if self.handshakes.len() >= MAX_HANDSHAKES || !self.room_for_another() {
                log::warn!("vsock: too many connections; closing a new host connection");
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            if self
                .ctl(ControlOperation::Add, fd, EventSet::IN.bits())
                .is_ok()
            {
                self.targets.insert(fd, Target::Handshake);
                let expires = Instant::now() + CONNECT_TIMEOUT;
                self.deadline.schedule(expires);
                let line = Vec::new();
                self.handshakes.insert(
                    fd,
                    Handshake {
                        stream,
                        line,
                        expires,
                    },
                );
                // The line may be there already.
                self.read_handshake(fd);
            }
        }
    }

    fn drop_handshake(&mut self, fd: RawFd) -> Option<Handshake> {
        let _ = self.ctl(ControlOperation::Delete, fd, 0);
        self.targets.remove(&fd);
        let handshake = self.handshakes.remove(&fd);
        if handshake.is_some() {
            self.resume_listener();
        }
        handshake
    }

    /// Reads the CONNECT line byte by byte (so no data after it is taken).
    fn read_handshake(&mut self, fd: RawFd) {
        let Some(hs) = self.handshakes.get_mut(&fd) else {
            return;
        };
        let mut byte = [0u8; 1];
        let port = loop {
            match hs.stream.read(&mut byte) {
                Ok(1) if byte[0] == b'\n' => break parse_connect(&hs.line),
                Ok(1) if hs.line.len() < MAX_CONNECT_LINE => hs.line.push(byte[0]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                _ => break None,
            }
        };
        let Some(hs) = self.drop_handshake(fd) else {
            return;
        };
        let Some(port) = port else {
            log::warn!(
                "vsock: bad CONNECT line {:?}",
                String::from_utf8_lossy(&hs.line)
            );
            return;
        };
        let Some(local_port) = self.allocate_local_port() else {
            return;
        };
        let mut conn = Connection::new(
            hs.stream,
            local_port,
            port,
            self.guest_cid,
            State::LocalInit,
        );
        let expires = Instant::now() + CONNECT_TIMEOUT;
        conn.expires = Some(expires);
        self.deadline.schedule(expires);
        let key = (local_port, port);
        self.add_conn(conn);
        self.replies
            .push_back(Reply::Conn(key, VIRTIO_VSOCK_OP_REQUEST, 0));
    }

    fn allocate_local_port(&mut self) -> Option<u32> {
        for _ in 0..1024 {
            let port = self.next_local_port;
            self.next_local_port = self
                .next_local_port
                .checked_add(1)
                .unwrap_or(FIRST_LOCAL_PORT);
            if !self.conns.keys().any(|(local, _)| *local == port) {
                return Some(port);
            }
        }
        None
    }

    fn conn_event(&mut self, key: Key, events: EventSet) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        if events.intersects(EventSet::OUT | EventSet::ERROR | EventSet::HANG_UP)
            && conn.wants_write()
            && conn.flush_to_host().is_err()
        {
            self.reset_conn(key);
            return;
        }
        if conn.needs_credit_update() {
            conn.credit_update_queued = true;
            self.replies
                .push_back(Reply::Conn(key, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0));
        }
        if conn.finished() {
            self.reset_conn(key);
            return;
        }
        if events.intersects(EventSet::IN | EventSet::HANG_UP | EventSet::ERROR)
            && conn.wants_read()
            && !conn.in_ready
        {
            conn.in_ready = true;
            self.ready.push_back(key);
        }
        self.rearm(key);
    }

    fn expire(&mut self, now: Instant) {
        let stale: Vec<RawFd> = self
            .handshakes
            .iter()
            .filter(|(_, hs)| hs.expires <= now)
            .map(|(fd, _)| *fd)
            .collect();
        for fd in stale {
            log::warn!("vsock: CONNECT line not received in time");
            self.drop_handshake(fd);
        }
        let stale: Vec<Key> = self
            .conns
            .iter()
            .filter(|(_, c)| c.expires.is_some_and(|at| at <= now))
            .map(|(key, _)| *key)
            .collect();
        for key in stale {
            log::warn!("vsock: connection {key:?} timed out");
            self.reset_conn(key);
        }
    }

    /// Handles one packet from the guest.
    pub fn handle_tx(&mut self, packet: TxPacket) {
        let h = packet.header;
        if h.dst_cid != HOST_CID || h.src_cid != self.guest_cid {
            log::debug!(
                "vsock: packet from cid {} to cid {}; dropped",
                h.src_cid,
                h.dst_cid
            );
            return;
        }
        let key = (h.dst_port, h.src_port);
        if h.kind != VIRTIO_VSOCK_TYPE_STREAM {
            if h.op != VIRTIO_VSOCK_OP_RST {
                self.replies.push_back(self.rst_for(&h));
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(&key) else {
            match h.op {
                VIRTIO_VSOCK_OP_REQUEST => self.guest_connect(&h),
                VIRTIO_VSOCK_OP_RST => {}
                _ => self.replies.push_back(self.rst_for(&h)),
            }
            return;
        };
        conn.update_peer_credit(&h);
        match (h.op, conn.state) {
            (VIRTIO_VSOCK_OP_RST, _) => {
                self.close(key);
                return;
            }
            (VIRTIO_VSOCK_OP_RESPONSE, State::LocalInit) => {
                conn.state = State::Established;
                conn.expires = None;
                let ok = format!("OK {}\n", conn.local_port);
                if conn.stream.write_all(ok.as_bytes()).is_err() {
                    self.reset_conn(key);
                    return;
                }
            }
            (VIRTIO_VSOCK_OP_RW, State::Established) => {
                if conn.send_to_host(&packet.payload).is_err() {
                    self.reset_conn(key);
                    return;
                }
            }
            (VIRTIO_VSOCK_OP_CREDIT_UPDATE, _) => {}
            (VIRTIO_VSOCK_OP_CREDIT_REQUEST, _) if !conn.credit_update_queued => {
                conn.credit_update_queued = true;
                self.replies
                    .push_back(Reply::Conn(key, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0))
            }
            (VIRTIO_VSOCK_OP_CREDIT_REQUEST, _) => {}
            (VIRTIO_VSOCK_OP_SHUTDOWN, _) => {
                conn.peer_shutdown |= h.flags & VIRTIO_VSOCK_SHUTDOWN_MASK;
                if conn.flush_to_host().is_err() || conn.finished() || conn.state == State::Closing
                {
                    self.reset_conn(key);
                    return;
                }
            }
            _ => {
                log::debug!("vsock: op {} in state {:?}; resetting", h.op, conn.state);
                self.reset_conn(key);
                return;
            }
        }
        if let Some(conn) = self.conns.get_mut(&key) {
            if conn.needs_credit_update() {
                conn.credit_update_queued = true;
                self.replies
                    .push_back(Reply::Conn(key, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0));
            }
        }
        self.rearm(key);
    }

    /// The guest connects to host port `h.dst_port`.
    fn guest_connect(&mut self, h: &Header) {
        if !self.room_for_another() {
            log::warn!(
                "vsock: {} connections open; refusing the guest's to port {}",
                self.conns.len(),
                h.dst_port
            );
            self.replies.push_back(self.rst_for(h));
            return;
        }
        let stream = self
            .backend
            .connect(h.dst_port)
            .and_then(|s| s.set_nonblocking(true).map(|()| s));
        match stream {
            Ok(stream) => {
                let mut conn = Connection::new(
                    stream,
                    h.dst_port,
                    h.src_port,
                    self.guest_cid,
                    State::Established,
                );
                conn.update_peer_credit(h);
                let key = (h.dst_port, h.src_port);
                self.add_conn(conn);
                self.replies
                    .push_back(Reply::Conn(key, VIRTIO_VSOCK_OP_RESPONSE, 0));
            }
            Err(e) => {
                log::debug!("vsock: guest connect to port {} failed: {e}", h.dst_port);
                self.replies.push_back(self.rst_for(h));
            }
        }
    }

    /// Fills rx buffers: queued control packets first, then data from
    /// readable host sockets (each read bounded by the buffer and the
    /// guest's credit). Returns whether the used ring changed.
    pub fn fill_rx(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> virtio::Result<bool> {
        let mut used = false;
        while !self.replies.is_empty() {
            // The buffer first: a connection's header is built when it is
            // sent, so that it carries the credit of that moment.
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                return Ok(used);
            };
            let header = match self.replies.pop_front() {
                Some(Reply::Raw(header)) => header,
                Some(Reply::Conn(key, op, flags)) => match self.conns.get_mut(&key) {
                    Some(conn) => {
                        if op == VIRTIO_VSOCK_OP_CREDIT_UPDATE {
                            conn.credit_update_queued = false;
                        }
                        conn.header(op, flags)
                    }
                    None => {
                        queue.go_to_previous_position();
                        continue;
                    }
                },
                None => {
                    queue.go_to_previous_position();
                    break;
                }
            };
            let head = chain.head_index();
            let len = match packet::write_rx(chain, mem, header, &[]) {
                Ok(len) => len,
                Err(e) => {
                    log::warn!("vsock: {e}");
                    self.replies.push_front(Reply::Raw(header));
                    0
                }
            };
            add_used(queue, mem, head, len)?;
            used = true;
        }
        while let Some(key) = self.ready.front().copied() {
            let Some(chain) = queue.pop_descriptor_chain(mem) else {
                return Ok(used);
            };
            let Some(conn) = self.conns.get_mut(&key) else {
                queue.go_to_previous_position();
                self.ready.pop_front();
                continue;
            };
            let head = chain.head_index();
            let Some(room) = packet::rx_room(&chain, mem) else {
                log::warn!("vsock: unusable rx buffer");
                add_used(queue, mem, head, 0)?;
                used = true;
                continue;
            };
            let (header, data) = match conn.read_from_host(room) {
                HostRead::Data(data) => {
                    // The next readable connection gets the next buffer.
                    self.ready.rotate_left(1);
                    (conn.header(VIRTIO_VSOCK_OP_RW, 0), data)
                }
                HostRead::Closed => {
                    // One SHUTDOWN, and the socket leaves the ready list
                    // (it would read EOF again for every rx buffer). EOF
                    // may be a half-close (`shutdown(SHUT_WR)`) by a host
                    // that still reads: the guest hears "the host sends no
                    // more" and its data keeps flowing. Once the guest sent
                    // its last bytes too, both sides are done: SHUTDOWN
                    // both ways, and the guest's RST is awaited.
                    conn.in_ready = false;
                    let flags = if conn.finished() {
                        conn.state = State::Closing;
                        let expires = Instant::now() + CLOSE_TIMEOUT;
                        conn.expires = Some(expires);
                        self.deadline.schedule(expires);
                        VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND
                    } else {
                        VIRTIO_VSOCK_SHUTDOWN_SEND
                    };
                    let header = conn.header(VIRTIO_VSOCK_OP_SHUTDOWN, flags);
                    self.ready.pop_front();
                    self.rearm(key);
                    (header, Vec::new())
                }
                HostRead::WouldBlock => {
                    queue.go_to_previous_position();
                    conn.in_ready = false;
                    self.ready.pop_front();
                    self.rearm(key);
                    continue;
                }
            };
            let len = packet::write_rx(chain, mem, header, &data).unwrap_or(0);
            add_used(queue, mem, head, len)?;
            used = true;
        }
        Ok(used)
    }
}

fn add_used(queue: &mut Queue, mem: &GuestMemoryMmap, head: u16, len: u32) -> virtio::Result<()> {
    queue
        .add_used(mem, head, len)
        .map_err(|e| virtio::Error::UsedRing(e.to_string()))
}

/// Parses `CONNECT <port>` (the newline already stripped).
fn parse_connect(line: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(line).ok()?;
    let port = text.strip_prefix("CONNECT ")?.trim_end_matches('\r');
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines_are_parsed_strictly() {
        assert_eq!(parse_connect(b"CONNECT 1024"), Some(1024));
        assert_eq!(parse_connect(b"CONNECT 52\r"), Some(52));
        assert_eq!(parse_connect(b"connect 1"), None);
        assert_eq!(parse_connect(b"CONNECT -1"), None);
        assert_eq!(parse_connect(b"CONNECT 99999999999"), None);
        assert_eq!(parse_connect(b"CONNECT"), None);
    }
}
