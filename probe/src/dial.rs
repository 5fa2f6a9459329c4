//! Opening a TCP connection the way kubelet's probe dialer does: one
//! deadline for lookup and connect, `SO_LINGER` 0 so that probes leave no
//! TIME_WAIT sockets behind, and Go's error texts.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

use crate::go_text;

/// Where a probe goes when its `host` is unset: the loopback of the pod's
/// network namespace, in which the prober's thread runs.
pub(crate) const DEFAULT_HOST: &str = "127.0.0.1";

/// Why a dial failed; each carries Go's text (`dial tcp ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DialError {
    /// The connection was refused, unreachable, or the name not found.
    Failed(String),
    /// The deadline passed first.
    TimedOut(String),
}

impl DialError {
    pub(crate) fn text(&self) -> &str {
        match self {
            DialError::Failed(text) | DialError::TimedOut(text) => text,
        }
    }
}

/// Connects to `host:port` before `deadline`.
pub(crate) async fn dial(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, DialError> {
    let addr = go_text::join_host_port(host, port);
    let target = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => match timeout_at(deadline, tokio::net::lookup_host((host, port))).await {
            Err(_) => return Err(DialError::TimedOut(go_text::dial_timeout(&addr))),
            Ok(Err(err)) => {
                return Err(DialError::Failed(format!("dial tcp: lookup {host}: {err}")))
            }
            Ok(Ok(mut found)) => match found.next() {
                Some(target) => target,
                None => {
                    return Err(DialError::Failed(format!(
                        "dial tcp: lookup {host}: no such host"
                    )))
                }
            },
        },
    };
    let addr = target.to_string();
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .and_then(|socket| socket.set_zero_linger().map(|()| socket))
    .map_err(|err| {
        DialError::Failed(format!(
            "dial tcp {addr}: socket: {}",
            go_text::errno_text(&err)
        ))
    })?;
    match timeout_at(deadline, socket.connect(target)).await {
        Err(_) => Err(DialError::TimedOut(go_text::dial_timeout(&addr))),
        Ok(Err(err)) => Err(DialError::Failed(go_text::dial_error(&addr, &err))),
        Ok(Ok(stream)) => Ok(stream),
    }
}
