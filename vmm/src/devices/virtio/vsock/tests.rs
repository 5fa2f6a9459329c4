//! vsock device tests: a test driver puts rx/tx buffers in guest memory
//! and plays the guest's side of the protocol; the host side is a test
//! backend over socket pairs, or the real Unix-socket backend.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use virtio_queue::Queue;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::packet::{Header, HEADER_LEN};
use super::*;
use crate::devices::virtio::test_driver::{readable, TestDriver, DATA, F_NEXT, F_WRITE};
use crate::devices::virtio::VirtioDevice;

const GUEST_CID: u64 = 3;
const RX_BUF_LEN: u32 = 4096;
/// rx buffers: one 4 KiB page per descriptor index.
const RX_BUFS: u64 = DATA + 0x2_0000;

/// Host side for tests: accepted streams are queued by the test, guest
/// connections get one end of a socket pair (the other kept here).
#[derive(Clone)]
struct TestBackend {
    incoming: Arc<Mutex<VecDeque<UnixStream>>>,
    wake: Arc<EventFd>,
    peers: Arc<Mutex<HashMap<u32, UnixStream>>>,
    /// The next accept fails as if the VMM were out of fds.
    fail_accept: Arc<AtomicBool>,
}

impl TestBackend {
    fn new() -> Self {
        Self {
            incoming: Arc::default(),
            wake: Arc::new(EventFd::new(EFD_NONBLOCK).unwrap()),
            peers: Arc::default(),
            fail_accept: Arc::default(),
        }
    }

    /// A host client connecting; returns its end.
    fn host_connects(&self) -> UnixStream {
        let (ours, theirs) = UnixStream::pair().unwrap();
        self.incoming.lock().unwrap().push_back(theirs);
        self.wake.write(1).unwrap();
        ours
    }

    fn peer(&self, port: u32) -> UnixStream {
        let peer = self.peers.lock().unwrap().remove(&port).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        peer
    }
}

impl Backend for TestBackend {
    fn listener_fd(&self) -> Option<RawFd> {
        Some(self.wake.as_raw_fd())
    }

    fn accept(&mut self) -> std::io::Result<Option<UnixStream>> {
        if self.fail_accept.swap(false, Ordering::SeqCst) {
            return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
        }
        let next = self.incoming.lock().unwrap().pop_front();
        if next.is_none() {
            let _ = self.wake.read();
        }
        Ok(next)
    }

    fn connect(&mut self, port: u32) -> std::io::Result<UnixStream> {
        if port == 666 {
            return Err(std::io::ErrorKind::ConnectionRefused.into());
        }
        let (ours, theirs) = UnixStream::pair()?;
        self.peers.lock().unwrap().insert(port, theirs);
        Ok(ours)
    }
}

/// The guest driver: rx and tx queues in one memory.
struct Guest {
    dev: Vsock,
    rx: TestDriver,
    tx: TestDriver,
    queues: Vec<Queue>,
    rx_next: u16,
    rx_seen: u16,
    tx_next: u16,
}

impl Guest {
    fn new(backend: Box<dyn Backend>) -> Self {
        let rx = TestDriver::new(16);
        let tx = TestDriver::on(rx.mem.clone(), 16, 0x4000);
        let event = TestDriver::on(rx.mem.clone(), 16, 0x8000);
        let queues = vec![
            rx.queue(QUEUE_SIZE),
            tx.queue(QUEUE_SIZE),
            event.queue(QUEUE_SIZE),
        ];
        Self {
            dev: Vsock::new(GUEST_CID, backend).unwrap(),
            rx,
            tx,
            queues,
            rx_next: 0,
            rx_seen: 0,
            tx_next: 0,
        }
    }

    /// Makes `n` rx buffers available (without notifying).
    fn give_rx(&mut self, n: u16) {
        for _ in 0..n {
            let index = self.rx_next % 16;
            let addr = RX_BUFS + u64::from(index) * 0x1000;
            self.rx.add_chain(index, &[(addr, RX_BUF_LEN, F_WRITE, 0)]);
            self.rx_next = self.rx_next.wrapping_add(1);
        }
    }

    fn notify(&mut self, queue: usize) -> bool {
        self.dev
            .process_queue(queue, &mut self.queues, &self.rx.mem)
            .unwrap()
    }

    /// The device's backend fd fired.
    fn event(&mut self) -> bool {
        self.dev
            .handle_event(0, &mut self.queues, &self.rx.mem)
            .unwrap()
    }

    fn header(&self, op: u16, src_port: u32, dst_port: u32) -> Header {
        Header {
            src_cid: GUEST_CID,
            dst_cid: HOST_CID,
            src_port,
            dst_port,
            kind: VIRTIO_VSOCK_TYPE_STREAM,
            op,
            buf_alloc: 1 << 16,
            ..Header::default()
        }
    }

    /// Sends a packet on tx (header and payload in two descriptors).
    fn send(&mut self, mut header: Header, payload: &[u8]) {
        let index = (self.tx_next % 8) * 2;
        let at = DATA + u64::from(index) * 0x1000;
        header.len = payload.len() as u32;
        self.rx
            .mem
            .write_slice(&header.to_bytes(), GuestAddress(at))
            .unwrap();
        self.rx
            .mem
            .write_slice(payload, GuestAddress(at + 0x800))
            .unwrap();
        self.tx.add_chain(
            index,
            &[
                (at, HEADER_LEN as u32, F_NEXT, index + 1),
                (at + 0x800, payload.len() as u32, 0, 0),
            ],
        );
        self.tx_next += 1;
        self.notify(TX_QUEUE);
    }

    /// Packets the device put in rx buffers since the last call.
    fn recv(&mut self) -> Vec<(Header, Vec<u8>)> {
        let mut out = Vec::new();
        while self.rx_seen != self.rx.used_idx() {
            let (head, len) = self.rx.used(self.rx_seen);
            self.rx_seen = self.rx_seen.wrapping_add(1);
            if len == 0 {
                continue;
            }
            let addr = RX_BUFS + u64::from(head) * 0x1000;
            let mut raw = [0u8; HEADER_LEN];
            self.rx
                .mem
                .read_slice(&mut raw, GuestAddress(addr))
                .unwrap();
            let header = Header::from_bytes(&raw);
            let mut data = vec![0u8; len as usize - HEADER_LEN];
            self.rx
                .mem
                .read_slice(&mut data, GuestAddress(addr + HEADER_LEN as u64))
                .unwrap();
            assert_eq!(header.len as usize, data.len());
            out.push((header, data));
        }
        out
    }

    fn recv_one(&mut self) -> (Header, Vec<u8>) {
        let mut got = self.recv();
        assert_eq!(got.len(), 1, "{got:?}");
        got.remove(0)
    }
}

/// Lets the host side's writes reach the muxer, then serves them.
fn settle(guest: &mut Guest) -> bool {
    std::thread::sleep(Duration::from_millis(20));
    guest.event()
}

#[test]
fn guest_connects_exchanges_data_and_closes() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(8);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52), &[]);
    let (h, _) = guest.recv_one();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_RESPONSE);
    assert_eq!(
        (h.src_cid, h.dst_cid, h.src_port, h.dst_port),
        (2, 3, 52, 5000)
    );
    assert_eq!(h.buf_alloc, CONN_BUF_ALLOC);
    let mut peer = backend.peer(52);
    guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000, 52), b"ping");
    let mut buf = [0u8; 4];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    peer.write_all(b"pong!").unwrap();
    assert!(settle(&mut guest));
    let (h, data) = guest.recv_one();
    assert_eq!((h.op, data.as_slice()), (VIRTIO_VSOCK_OP_RW, &b"pong!"[..]));
    assert_eq!(h.fwd_cnt, 4, "the guest's 4 bytes were forwarded");
    let mut shutdown = guest.header(VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 52);
    shutdown.flags = VIRTIO_VSOCK_SHUTDOWN_MASK;
    guest.send(shutdown, &[]);
    let (h, _) = guest.recv_one();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_RST);
    assert_eq!(guest.dev.connection_count(), 0);
    assert_eq!(peer.read(&mut buf).unwrap(), 0, "host side closed");
}

#[test]
fn host_eof_sends_one_shutdown_however_many_rx_buffers_wait() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(8);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
    let mut peer = backend.peer(52);
    peer.write_all(b"last words").unwrap();
    drop(peer);
    settle(&mut guest);
    let got = guest.recv();
    let ops: Vec<u16> = got.iter().map(|(h, _)| h.op).collect();
    assert_eq!(
        ops,
        [VIRTIO_VSOCK_OP_RW, VIRTIO_VSOCK_OP_SHUTDOWN],
        "data, then one SHUTDOWN; the other rx buffers stay free"
    );
    assert_eq!(got[0].1, b"last words");
    assert_eq!(
        got[1].0.flags, VIRTIO_VSOCK_SHUTDOWN_SEND,
        "the host sends no more; it may still read"
    );
    // More buffers and events do not bring another SHUTDOWN.
    guest.give_rx(8);
    guest.notify(RX_QUEUE);
    settle(&mut guest);
    assert!(guest.recv().is_empty());
    guest.send(guest.header(VIRTIO_VSOCK_OP_RST, 5000, 52), &[]);
    assert_eq!(guest.dev.connection_count(), 0);
}

#[test]
fn a_host_half_close_still_gets_the_guests_reply() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(8);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 53), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
    let mut peer = backend.peer(53);
    peer.write_all(b"question").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    settle(&mut guest);
    let got = guest.recv();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1].0.op, VIRTIO_VSOCK_OP_SHUTDOWN);
    assert_eq!(got[1].0.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
    // Long after the close timeout, the guest answers and is done.
    std::thread::sleep(CLOSE_TIMEOUT + Duration::from_millis(200));
    settle(&mut guest);
    assert_eq!(
        guest.dev.connection_count(),
        1,
        "no timeout on a half-close"
    );
    guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000, 53), b"answer");
    let mut done = guest.header(VIRTIO_VSOCK_OP_SHUTDOWN, 5000, 53);
    done.flags = VIRTIO_VSOCK_SHUTDOWN_MASK;
    guest.send(done, &[]);
    let mut reply = Vec::new();
    peer.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    peer.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"answer", "the reply, then EOF");
    let (h, _) = guest.recv_one();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_RST, "both sides done: closed");
    assert_eq!(guest.dev.connection_count(), 0);
}

#[test]
fn readable_connections_share_the_rx_buffers() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(6);
    let mut peers = Vec::new();
    for port in [5000, 5001] {
        guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, port, 52 + port), &[]);
        assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
        peers.push(backend.peer(52 + port));
    }
    // Each host socket holds more than the four 4 KiB rx buffers left take.
    for peer in &mut peers {
        peer.write_all(&[7u8; 32 * 1024]).unwrap();
    }
    settle(&mut guest);
    let ports: Vec<u32> = guest.recv().iter().map(|(h, _)| h.dst_port).collect();
    assert_eq!(ports.len(), 4);
    assert!(
        ports.contains(&5000) && ports.contains(&5001),
        "both connections got buffers: {ports:?}"
    );
}

#[test]
fn credit_updates_are_not_queued_twice_while_rx_buffers_lack() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(1);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
    let mut peer = backend.peer(52);
    // No rx buffers now: 30 × 6 KiB reach the host, well past the 64 KiB
    // after which we owe the guest a CREDIT_UPDATE, and it asks twice.
    let chunk = [5u8; 6 * 1024];
    let mut drained = vec![0u8; chunk.len()];
    for _ in 0..30 {
        guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000, 52), &chunk);
        peer.read_exact(&mut drained).unwrap();
    }
    for _ in 0..2 {
        guest.send(guest.header(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5000, 52), &[]);
    }
    guest.give_rx(16);
    guest.notify(RX_QUEUE);
    let got = guest.recv();
    assert_eq!(got.len(), 1, "one CREDIT_UPDATE: {got:?}");
    assert_eq!(got[0].0.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    assert_eq!(got[0].0.fwd_cnt, 30 * 6 * 1024);
    // Once sent, the next one is owed again.
    guest.send(guest.header(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5000, 52), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
}

#[test]
fn host_connect_handshake_and_rst() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(4);
    let mut host = backend.host_connects();
    host.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    host.write_all(b"CONNECT 1024\n").unwrap();
    assert!(settle(&mut guest));
    let (h, _) = guest.recv_one();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_REQUEST);
    assert_eq!(
        (h.src_port, h.dst_port, h.dst_cid),
        (FIRST_LOCAL_PORT, 1024, 3)
    );
    guest.send(
        guest.header(VIRTIO_VSOCK_OP_RESPONSE, 1024, FIRST_LOCAL_PORT),
        &[],
    );
    let mut ok = [0u8; 14];
    host.read_exact(&mut ok).unwrap();
    assert_eq!(&ok, b"OK 1073741824\n");
    host.write_all(b"hi").unwrap();
    settle(&mut guest);
    let (h, data) = guest.recv_one();
    assert_eq!((h.op, data.as_slice()), (VIRTIO_VSOCK_OP_RW, &b"hi"[..]));
    guest.send(
        guest.header(VIRTIO_VSOCK_OP_RST, 1024, FIRST_LOCAL_PORT),
        &[],
    );
    assert_eq!(guest.dev.connection_count(), 0);
    let mut rest = [0u8; 1];
    assert_eq!(host.read(&mut rest).unwrap(), 0, "closed on RST");
}

#[test]
fn timeouts_fire_on_a_quiet_device() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(4);
    let mut silent = backend.host_connects();
    let mut unanswered = backend.host_connects();
    unanswered.write_all(b"CONNECT 1024\n").unwrap();
    let started = Instant::now();
    settle(&mut guest);
    let (h, _) = guest.recv_one();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_REQUEST, "the guest never answers it");
    // From here only the device's own fd wakes it, as in the event loop:
    // nothing else happens, so it is the timeout timer or nothing.
    let fd = guest.dev.event_fds()[0];
    let mut wakeups = 0;
    while started.elapsed() < CONNECT_TIMEOUT * 2 {
        if readable(fd, 100) {
            wakeups += 1;
            guest.event();
        }
    }
    assert!(wakeups >= 1, "the timer woke the device");
    let (h, _) = guest.recv_one();
    assert_eq!(
        (h.op, h.src_port, h.dst_port),
        (VIRTIO_VSOCK_OP_RST, FIRST_LOCAL_PORT, 1024),
        "the unanswered request is reset"
    );
    assert_eq!(guest.dev.connection_count(), 0);
    let mut byte = [0u8; 1];
    for (name, stream) in [("silent", &mut silent), ("unanswered", &mut unanswered)] {
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(
            matches!(stream.read(&mut byte), Ok(0)),
            "{name} client closed by the timeout"
        );
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_both_ways() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.dev.muxer_mut().set_max_connections(2);
    guest.give_rx(8);
    for port in [60, 61, 62] {
        guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, port), &[]);
    }
    let ops: Vec<(u16, u32)> = guest
        .recv()
        .iter()
        .map(|(h, _)| (h.op, h.src_port))
        .collect();
    assert_eq!(
        ops,
        [
            (VIRTIO_VSOCK_OP_RESPONSE, 60),
            (VIRTIO_VSOCK_OP_RESPONSE, 61),
            (VIRTIO_VSOCK_OP_RST, 62)
        ],
        "the third is over the limit"
    );
    assert_eq!(guest.dev.connection_count(), 2);
    // A host client is closed unanswered while the limit is reached.
    let mut host = backend.host_connects();
    host.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    settle(&mut guest);
    let mut byte = [0u8; 1];
    assert_eq!(host.read(&mut byte).unwrap(), 0, "closed");
    assert!(guest.recv().is_empty(), "no REQUEST for it");
    // One closes: room again.
    guest.send(guest.header(VIRTIO_VSOCK_OP_RST, 5000, 60), &[]);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 63), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
}

#[test]
fn a_failing_accept_pauses_the_listener_until_a_connection_closes() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(8);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 70), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
    backend.fail_accept.store(true, Ordering::SeqCst);
    let _waiting = backend.host_connects();
    let fd = guest.dev.event_fds()[0];
    assert!(readable(fd, 1000));
    guest.event();
    // The listener is still readable (its client waits), yet the device's
    // fd is quiet: no busy loop while accepting fails.
    assert!(readable(backend.wake.as_raw_fd(), 0));
    assert!(!readable(fd, 100), "the listener is paused");
    // A connection closes: the listener is back and the client served.
    guest.send(guest.header(VIRTIO_VSOCK_OP_RST, 5000, 70), &[]);
    assert!(readable(fd, 1000), "the listener is back");
    guest.event();
    assert_eq!(backend.incoming.lock().unwrap().len(), 0, "accepted");
}

#[test]
fn bad_connect_lines_and_guest_refusals_close_the_host_side() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(4);
    let mut bad = backend.host_connects();
    bad.write_all(b"HELLO\n").unwrap();
    let mut long = backend.host_connects();
    long.write_all(&[b'C'; 100]).unwrap();
    settle(&mut guest);
    assert!(guest.recv().is_empty());
    let mut byte = [0u8; 1];
    bad.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    long.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(bad.read(&mut byte).unwrap(), 0);
    // Closed with its bytes unread: a reset rather than EOF.
    assert!(matches!(long.read(&mut byte), Ok(0) | Err(_)));
    let mut refused = backend.host_connects();
    refused.write_all(b"CONNECT 7\n").unwrap();
    settle(&mut guest);
    let (h, _) = guest.recv_one();
    guest.send(guest.header(VIRTIO_VSOCK_OP_RST, 7, h.src_port), &[]);
    refused
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(refused.read(&mut byte).unwrap(), 0);
}

#[test]
fn unknown_connections_refused_ports_and_foreign_types_get_rst() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend));
    guest.give_rx(8);
    guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000, 52), b"data");
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RST);
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 5001, 666), &[]);
    let (h, _) = guest.recv_one();
    assert_eq!(
        (h.op, h.src_port, h.dst_port),
        (VIRTIO_VSOCK_OP_RST, 666, 5001)
    );
    let mut seqpacket = guest.header(VIRTIO_VSOCK_OP_REQUEST, 5002, 52);
    seqpacket.kind = 2;
    guest.send(seqpacket, &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RST);
    // A RST for nothing and a packet for another CID get no answer.
    guest.send(guest.header(VIRTIO_VSOCK_OP_RST, 5000, 52), &[]);
    let mut foreign = guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52);
    foreign.dst_cid = 7;
    guest.send(foreign, &[]);
    assert!(guest.recv().is_empty());
    assert_eq!(guest.dev.connection_count(), 0);
}

#[test]
fn a_guest_without_credit_is_not_sent_data_and_nothing_spins() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend.clone()));
    guest.give_rx(8);
    let mut request = guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52);
    request.buf_alloc = 8;
    guest.send(request, &[]);
    guest.recv_one();
    let mut peer = backend.peer(52);
    peer.write_all(&[9u8; 100]).unwrap();
    settle(&mut guest);
    let (_, data) = guest.recv_one();
    assert_eq!(data, vec![9u8; 8], "only the guest's credit");
    // The muxer no longer polls that socket: its epoll is quiet.
    let mut events = [vmm_sys_util::epoll::EpollEvent::default(); 4];
    let epoll_fd = guest.dev.event_fds()[0];
    // SAFETY: `epoll_fd` is the muxer's live epoll fd and `events` is a
    // writable array of 4 epoll_event.
    let n = unsafe { libc::epoll_wait(epoll_fd, events.as_mut_ptr().cast(), 4, 0) };
    assert_eq!(n, 0, "no readiness reported while the guest has no credit");
    assert!(guest.recv().is_empty());
    let mut update = guest.header(VIRTIO_VSOCK_OP_CREDIT_UPDATE, 5000, 52);
    update.buf_alloc = 8;
    update.fwd_cnt = 8;
    guest.send(update, &[]);
    settle(&mut guest);
    assert_eq!(guest.recv_one().1, vec![9u8; 8]);
    // CREDIT_REQUEST is answered with our credit.
    guest.send(guest.header(VIRTIO_VSOCK_OP_CREDIT_REQUEST, 5000, 52), &[]);
    let (h, _) = guest.recv().pop().unwrap();
    assert_eq!(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
}

#[test]
fn without_rx_buffers_replies_wait_and_tx_stops_at_the_backlog() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend));
    for port in 0..10 {
        guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000 + port, 52), b"x");
    }
    assert!(guest.recv().is_empty());
    guest.give_rx(16);
    assert!(guest.notify(RX_QUEUE));
    let got = guest.recv();
    assert_eq!(got.len(), 10);
    assert!(got.iter().all(|(h, _)| h.op == VIRTIO_VSOCK_OP_RST));
}

#[test]
fn malformed_tx_chains_and_tiny_rx_buffers_are_survived() {
    let backend = TestBackend::new();
    let mut guest = Guest::new(Box::new(backend));
    // A header claiming more payload than the chain holds.
    let mut h = guest.header(VIRTIO_VSOCK_OP_REQUEST, 5000, 52);
    h.len = 1000;
    guest
        .rx
        .mem
        .write_slice(&h.to_bytes(), GuestAddress(DATA))
        .unwrap();
    guest.tx.add_chain(0, &[(DATA, HEADER_LEN as u32, 0, 0)]);
    // A header shorter than 44 bytes, and one outside memory.
    guest.tx.add_chain(1, &[(DATA, 20, 0, 0)]);
    guest.tx.add_chain(2, &[(u64::MAX - 10, 64, 0, 0)]);
    guest.notify(TX_QUEUE);
    assert_eq!(guest.tx.used_idx(), 3, "all consumed");
    assert_eq!(guest.dev.connection_count(), 0);
    // An rx buffer too small for a header is returned empty.
    guest.rx.add_chain(0, &[(RX_BUFS, 10, F_WRITE, 0)]);
    guest.rx_next = 1;
    guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 5000, 52), b"x");
    assert_eq!(guest.rx.used(0), (0, 0));
    guest.give_rx(1);
    guest.notify(RX_QUEUE);
    assert_eq!(guest.recv().pop().unwrap().0.op, VIRTIO_VSOCK_OP_RST);
}

#[test]
fn real_unix_sockets_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("vm.vsock");
    let backend = UnixBackend::bind(&uds).unwrap();
    let mut guest = Guest::new(Box::new(backend));
    guest.give_rx(8);
    // Host → guest.
    let mut host = UnixStream::connect(&uds).unwrap();
    host.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    host.write_all(b"CONNECT 1024\n").unwrap();
    settle(&mut guest);
    settle(&mut guest);
    let (h, _) = guest.recv_one();
    assert_eq!((h.op, h.dst_port), (VIRTIO_VSOCK_OP_REQUEST, 1024));
    guest.send(
        guest.header(VIRTIO_VSOCK_OP_RESPONSE, 1024, h.src_port),
        &[],
    );
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        host.read_exact(&mut byte).unwrap();
        line.push(byte[0] as char);
    }
    assert_eq!(line, format!("OK {}\n", h.src_port));
    guest.send(guest.header(VIRTIO_VSOCK_OP_RW, 1024, h.src_port), b"agent");
    let mut got = [0u8; 5];
    host.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"agent");
    // Guest → host, to <uds>_5000.
    let listener = UnixListener::bind(format!("{}_5000", uds.display())).unwrap();
    guest.send(guest.header(VIRTIO_VSOCK_OP_REQUEST, 777, 5000), &[]);
    assert_eq!(guest.recv_one().0.op, VIRTIO_VSOCK_OP_RESPONSE);
    let (mut served, _) = listener.accept().unwrap();
    served.write_all(b"logs").unwrap();
    drop(served);
    settle(&mut guest);
    settle(&mut guest);
    let got = guest.recv();
    assert_eq!(got[0].1, b"logs");
    assert_eq!(
        got.last().unwrap().0.op,
        VIRTIO_VSOCK_OP_SHUTDOWN,
        "host EOF"
    );
    assert_eq!(guest.dev.connection_count(), 2);
    drop(guest);
    assert!(
        !uds.exists(),
        "the listening socket is removed with the device"
    );
}
