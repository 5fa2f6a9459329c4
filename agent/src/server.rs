//! The listener (AF_VSOCK in the VM, a Unix socket in host mode) and the
//! per-connection threads: one request per connection, at most
//! [`MAX_CONNECTIONS`] at a time. A frame or message that cannot be decoded
//! gets an `Error{BadRequest}` reply and the connection is closed.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{
    accept4, bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, VsockAddr,
};
use podvm_proto::{read_message, ErrorCode, FrameError, Request, Response};

use crate::agent::{After, Agent};
use crate::conn::Conn;
use crate::console::say;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Most connections being refused at once (see [`refuse`]).
const MAX_REFUSING: usize = 16;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a reply may stay unread before the connection is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// After a bad request, unread input up to this much is read and dropped
/// before closing (closing a socket with unread input resets the
/// connection, and the peer might lose the error reply).
const LINGER_BYTES: usize = 1024 * 1024;
const LINGER_TIME: Duration = Duration::from_millis(200);

/// Where the agent listens.
pub enum Listener {
    Unix(UnixListener),
    Vsock(OwnedFd),
}

impl Listener {
    /// Binds a Unix socket at `path`, replacing a stale one.
    pub fn unix(path: &Path) -> std::io::Result<Listener> {
        let _ = std::fs::remove_file(path);
        Ok(Listener::Unix(UnixListener::bind(path)?))
    }

    /// Listens on AF_VSOCK `port`, any CID.
    pub fn vsock(port: u32) -> std::io::Result<Listener> {
        let fd = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &VsockAddr::new(libc::VMADDR_CID_ANY, port),
        )?;
        listen(&fd, Backlog::new(64)?)?;
        Ok(Listener::Vsock(fd))
    }

    fn accept(&self) -> std::io::Result<OwnedFd> {
        match self {
            Listener::Unix(l) => Ok(OwnedFd::from(l.accept()?.0)),
            Listener::Vsock(fd) => {
                let raw = accept4(std::os::fd::AsRawFd::as_raw_fd(fd), SockFlag::SOCK_CLOEXEC)?;
                // SAFETY: accept4 just returned this descriptor; nothing else owns it.
                Ok(unsafe { OwnedFd::from_raw_fd(raw) })
            }
        }
    }
}

/// Decrements the active-connection count when a connection ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections forever; `on_shutdown` runs (on the connection's
/// thread) after a `Shutdown` request was answered.
pub fn serve(listener: Listener, agent: Arc<Agent>, on_shutdown: Arc<dyn Fn() + Send + Sync>) {
    let active = Arc::new(AtomicUsize::new(0));
    let refusing = Arc::new(AtomicUsize::new(0));
    loop {
        let fd = match listener.accept() {
            Ok(fd) => fd,
            Err(e) => {
                say!("accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut conn = Conn::new(fd);
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            refuse(conn, &refusing);
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let agent = Arc::clone(&agent);
        let on_shutdown = Arc::clone(&on_shutdown);
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || {
                let _slot = slot;
                if handle(&mut conn, &agent) == After::Shutdown {
                    drop(conn);
                    on_shutdown();
                }
            });
        if let Err(e) = spawned {
            say!("cannot start a connection thread: {e}");
        }
    }
}

/// Answers a connection beyond the limit with an error, on a short-lived
/// thread (at most [`MAX_REFUSING`] at once; beyond that it is just closed).
fn refuse(mut conn: Conn, refusing: &Arc<AtomicUsize>) {
    if refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSING {
        refusing.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let slot = Slot(Arc::clone(refusing));
    let spawned = std::thread::Builder::new()
        .name("refuse".into())
        .spawn(move || {
            let _slot = slot;
            let _ = conn.set_timeouts(Some(LINGER_TIME), Some(LINGER_TIME));
            let _ = conn.send(&Response::error(
                ErrorCode::Internal,
                "too many concurrent connections",
            ));
            conn.discard_input(LINGER_BYTES, LINGER_TIME);
        });
    if let Err(e) = spawned {
        say!("cannot start a thread to refuse a connection: {e}");
    }
}

fn handle(conn: &mut Conn, agent: &Agent) -> After {
    if let Err(e) = conn.set_timeouts(Some(REQUEST_TIMEOUT), Some(SEND_TIMEOUT)) {
        say!("setting socket timeouts failed: {e}");
    }
    let request = match read_message::<Request, _>(conn) {
        Ok(Some(request)) => request,
        Ok(None) => return After::Continue,
        Err(e) => {
            let _ = conn.send(&Response::error(ErrorCode::BadRequest, e.to_string()));
            conn.discard_input(LINGER_BYTES, LINGER_TIME);
            return After::Continue;
        }
    };
    if let Err(e) = conn.set_timeouts(None, Some(SEND_TIMEOUT)) {
        say!("setting socket timeouts failed: {e}");
    }
    match agent.handle(request, conn) {
        Ok(after) => after,
        Err(FrameError::Io(_)) => After::Continue,
        Err(e) => {
            say!("replying failed: {e}");
            After::Continue
        }
    }
}
