//! `tcpSocket` probes against 127.0.0.1.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::TcpListener;
use std::time::Duration;

use podvm_probe::Outcome;
use podvm_proto::lifecycle::ProbeAction;
use support::{closed_port, no_exec, prober};

#[test]
fn open_port_is_success() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let action = ProbeAction::TcpSocket { host: None, port };
    assert_eq!(
        prober().probe_once(&action, Duration::from_secs(5), no_exec()),
        Outcome::Success
    );
}

#[test]
fn refused_port_reads_like_go() {
    let port = closed_port();
    let action = ProbeAction::TcpSocket {
        host: Some("127.0.0.1".to_owned()),
        port,
    };
    assert_eq!(
        prober().probe_once(&action, Duration::from_secs(5), no_exec()),
        Outcome::Failure(format!(
            "dial tcp 127.0.0.1:{port}: connect: connection refused"
        ))
    );
}
