//! The `tcpSocket` probe (kubelet's `pkg/probe/tcp`): success when a TCP
//! connection opens within the timeout.

use std::time::Duration;

use tokio::time::Instant;

use crate::dial::{dial, DEFAULT_HOST};
use crate::Outcome;

/// Opens (and at once closes) a connection to `host:port`.
pub(crate) async fn probe(host: Option<&str>, port: u16, timeout: Duration) -> Outcome {
    let host = host.unwrap_or(DEFAULT_HOST);
    match dial(host, port, Instant::now() + timeout).await {
        Ok(_stream) => Outcome::Success,
        Err(err) => Outcome::Failure(err.text().to_owned()),
    }
}
