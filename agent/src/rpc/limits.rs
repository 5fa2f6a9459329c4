//! Bounds on what clients can make the agent hold: connections, calls in
//! progress, and what a call that does not decode costs.
//!
//! The ttrpc sync server accepts without limit and runs a handful of threads
//! per connection (a reader, a writer, a dispatcher and a pool of workers
//! that grows by one for every call in progress). So:
//!
//! - Connections: an [`AcceptHook`] (ttrpc's `security_extension` feature)
//!   counts them and refuses (closes) any beyond [`MAX_CONNECTIONS`]. The
//!   hook is ttrpc's own seam for deciding about a connection before any
//!   thread is started for it; accepting ourselves would mean running a
//!   second accept loop and a server per connection. The count drops when
//!   the connection's per-connection data ([`Slot`]) is dropped, which
//!   ttrpc does once every thread of the connection has ended (so also
//!   after its last reply was written).
//! - Calls: every method is wrapped ([`guard`]) so at most
//!   [`MAX_CALLS_PER_CONNECTION`] run at once per connection and
//!   [`MAX_CALLS`] overall; beyond that a call is answered
//!   `RESOURCE_EXHAUSTED` at once. With long polls bounded by
//!   `LONG_POLL_MAX`, this bounds the threads.
//! - A request whose payload does not decode makes ttrpc's generated code
//!   fail the call, which ends the connection without an answer; the
//!   wrapper answers `INVALID_ARGUMENT` instead.
//!
//! Frames themselves (oversized, truncated, of an unknown type, naming an
//! unknown method) are ttrpc's: it answers an error status or closes the
//! connection.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ttrpc::{
    AcceptHook, Code, ConnectionContext, ConnectionData, ConnectionDataExt, HookError, HookOutput,
    MethodHandler, Request, Response, TtrpcContext,
};

use crate::console::say;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Most calls in progress on one connection.
pub const MAX_CALLS_PER_CONNECTION: usize = 64;
/// Most calls in progress on all connections together.
pub const MAX_CALLS: usize = 256;

/// The key of a connection's [`Slot`] in its ttrpc connection data.
const SLOT_KEY: &str = "podvm.slot";

/// What is in use, agent-wide.
#[derive(Debug, Default)]
pub struct Limits {
    connections: AtomicUsize,
    calls: AtomicUsize,
    /// Refusing connections right now (so that is said once, not per
    /// connection).
    refusing: AtomicBool,
}

/// One accepted connection, as handlers see it.
#[derive(Debug, Default)]
pub struct Connection {
    calls: AtomicUsize,
    closed: Mutex<bool>,
    closed_cv: Condvar,
}

impl Connection {
    /// Waits until ttrpc is done with the connection (every reply written
    /// or failed, the socket closed), at most `timeout`; whether it was.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut closed = self.closed.lock().unwrap_or_else(PoisonError::into_inner);
        while !*closed {
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return false;
            }
            closed = self
                .closed_cv
                .wait_timeout(closed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn mark_closed(&self) {
        *self.closed.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.closed_cv.notify_all();
    }
}

/// A connection's place in the count, kept in its ttrpc connection data
/// and released when ttrpc drops that.
#[derive(Debug)]
struct Slot {
    limits: Arc<Limits>,
    connection: Arc<Connection>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.connections.fetch_sub(1, Ordering::SeqCst);
        self.connection.mark_closed();
    }
}

/// The accept hook: see the module documentation.
#[derive(Debug)]
pub struct ConnectionLimit {
    limits: Arc<Limits>,
}

impl ConnectionLimit {
    pub fn new(limits: Arc<Limits>) -> Self {
        ConnectionLimit { limits }
    }
}

impl AcceptHook for ConnectionLimit {
    fn on_accept(&self, _fd: RawFd) -> Result<HookOutput, HookError> {
        let limits = &self.limits;
        let open = limits.connections.fetch_add(1, Ordering::SeqCst);
        if open >= MAX_CONNECTIONS {
            limits.connections.fetch_sub(1, Ordering::SeqCst);
            if !limits.refusing.swap(true, Ordering::SeqCst) {
                say!("{MAX_CONNECTIONS} connections are open: refusing more");
            }
            return Err(HookError::Rejected(format!(
                "{MAX_CONNECTIONS} connections are open"
            )));
        }
        limits.refusing.store(false, Ordering::SeqCst);
        let slot = Slot {
            limits: Arc::clone(limits),
            connection: Arc::new(Connection::default()),
        };
        let mut data = ConnectionData::new();
        data.insert(SLOT_KEY.to_string(), Box::new(slot));
        Ok(HookOutput {
            data,
            payload_transform: None,
        })
    }
}

/// The connection a call came on (`None` only without the accept hook).
pub fn connection_of(ctx: &TtrpcContext) -> Option<Arc<Connection>> {
    slot(&ctx.conn_ctx).map(|s| Arc::clone(&s.connection))
}

fn slot(conn: &ConnectionContext) -> Option<&Slot> {
    conn.data.get_typed::<Slot>(SLOT_KEY)
}

/// A call in progress; counted until dropped.
struct Permit {
    limits: Arc<Limits>,
    connection: Option<Arc<Connection>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limits.calls.fetch_sub(1, Ordering::SeqCst);
        if let Some(c) = &self.connection {
            c.calls.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Takes one from `counter` if it is below `max`.
fn take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

impl Limits {
    /// Admits one more call on `conn`, or says why not.
    fn admit(self: &Arc<Self>, conn: &ConnectionContext) -> Result<Permit, String> {
        let connection = slot(conn).map(|s| Arc::clone(&s.connection));
        if let Some(c) = &connection {
            if !take(&c.calls, MAX_CALLS_PER_CONNECTION) {
                return Err(format!(
                    "{MAX_CALLS_PER_CONNECTION} calls are in progress on this connection"
                ));
            }
        }
        if !take(&self.calls, MAX_CALLS) {
            if let Some(c) = &connection {
                c.calls.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(format!("{MAX_CALLS} calls are in progress"));
        }
        Ok(Permit {
            limits: Arc::clone(self),
            connection,
        })
    }
}

/// A method wrapped with the call limits and the decode-error answer.
struct Guarded {
    inner: Box<dyn MethodHandler + Send + Sync>,
    limits: Arc<Limits>,
}

fn answer_error(
    stream_id: u32,
    res_tx: std::sync::mpsc::Sender<(ttrpc::MessageHeader, Vec<u8>)>,
    conn: &ConnectionContext,
    code: Code,
    message: String,
) -> ttrpc::Result<()> {
    let status = ttrpc::get_status(code, message);
    ttrpc::send_response(
        stream_id,
        Response::from(ttrpc::Error::RpcStatus(status)),
        res_tx,
        conn,
    )
}

impl MethodHandler for Guarded {
    fn handler(&self, ctx: TtrpcContext, req: Request) -> ttrpc::Result<()> {
        let stream_id = ctx.mh.stream_id;
        let res_tx = ctx.res_tx.clone();
        let conn = Arc::clone(&ctx.conn_ctx);
        let _permit = match self.limits.admit(&conn) {
            Ok(p) => p,
            Err(why) => {
                return answer_error(stream_id, res_tx, &conn, Code::RESOURCE_EXHAUSTED, why)
            }
        };
        match self.inner.handler(ctx, req) {
            Ok(()) => Ok(()),
            // The generated code fails before answering only when the
            // payload does not decode (or the answer could not be queued,
            // in which case this answer fails too and the connection ends).
            Err(e) => answer_error(
                stream_id,
                res_tx,
                &conn,
                Code::INVALID_ARGUMENT,
                format!("{e}"),
            )
            .map_err(|_| e),
        }
    }
}

/// Wraps every method of a generated service.
pub fn guard(
    methods: HashMap<String, Box<dyn MethodHandler + Send + Sync>>,
    limits: &Arc<Limits>,
) -> HashMap<String, Box<dyn MethodHandler + Send + Sync>> {
    methods
        .into_iter()
        .map(|(path, inner)| {
            let guarded: Box<dyn MethodHandler + Send + Sync> = Box::new(Guarded {
                inner,
                limits: Arc::clone(limits),
            });
            (path, guarded)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(hook: &ConnectionLimit) -> ConnectionContext {
        ConnectionContext::new(Some(hook.on_accept(-1).unwrap()))
    }

    #[test]
    fn connections_beyond_the_limit_are_refused_until_one_ends() {
        let limits = Arc::new(Limits::default());
        let hook = ConnectionLimit::new(Arc::clone(&limits));
        let mut open: Vec<_> = (0..MAX_CONNECTIONS).map(|_| accepted(&hook)).collect();
        assert!(hook.on_accept(-1).is_err());
        assert!(hook.on_accept(-1).is_err());
        let ended = open.pop().unwrap();
        let connection = slot(&ended).map(|s| Arc::clone(&s.connection)).unwrap();
        assert!(!connection.wait_closed(Duration::ZERO));
        drop(ended);
        assert!(connection.wait_closed(Duration::ZERO));
        assert!(hook.on_accept(-1).is_ok());
    }

    #[test]
    fn calls_are_counted_per_connection_and_overall() {
        let limits = Arc::new(Limits::default());
        let hook = ConnectionLimit::new(Arc::clone(&limits));
        let conns: Vec<_> = (0..MAX_CALLS / MAX_CALLS_PER_CONNECTION + 1)
            .map(|_| accepted(&hook))
            .collect();
        let mut permits: Vec<_> = (0..MAX_CALLS_PER_CONNECTION)
            .map(|_| limits.admit(&conns[0]).unwrap())
            .collect();
        assert!(limits.admit(&conns[0]).is_err(), "per-connection limit");
        for conn in &conns[1..conns.len() - 1] {
            for _ in 0..MAX_CALLS_PER_CONNECTION {
                permits.push(limits.admit(conn).unwrap());
            }
        }
        let last = &conns[conns.len() - 1];
        assert!(limits.admit(last).is_err(), "overall limit");
        permits.pop();
        assert!(limits.admit(last).is_ok());
        drop(permits);
        assert_eq!(limits.calls.load(Ordering::SeqCst), 0);
    }
}
