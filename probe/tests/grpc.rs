//! `grpc` probes against a tonic-health server on 127.0.0.1.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use podvm_probe::Outcome;
use podvm_proto::lifecycle::ProbeAction;
use support::{closed_port, no_exec, prober};
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Starts a health server: the server itself SERVING, `sick` NOT_SERVING.
fn health_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ready_tx, ready_rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (reporter, service) = tonic_health::server::health_reporter();
            reporter
                .set_service_status("", ServingStatus::Serving)
                .await;
            reporter
                .set_service_status("sick", ServingStatus::NotServing)
                .await;
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            ready_tx.send(()).unwrap();
            tonic::transport::Server::builder()
                .serve_with_incoming(service, TcpIncoming::from(listener))
                .await
                .unwrap();
        });
    });
    ready_rx.recv().unwrap();
    port
}

fn probe(port: u16, service: Option<&str>, timeout: Duration) -> Outcome {
    let action = ProbeAction::Grpc {
        port,
        service: service.map(str::to_owned),
    };
    prober().probe_once(&action, timeout, no_exec())
}

#[test]
fn serving_is_success() {
    let port = health_server();
    assert_eq!(probe(port, None, Duration::from_secs(5)), Outcome::Success);
}

#[test]
fn not_serving_fails_with_the_status() {
    let port = health_server();
    assert_eq!(
        probe(port, Some("sick"), Duration::from_secs(5)),
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".to_owned())
    );
}

#[test]
fn unknown_service_fails_with_the_rpc_error() {
    let port = health_server();
    match probe(port, Some("nobody"), Duration::from_secs(5)) {
        Outcome::Failure(text) => assert!(
            text.starts_with("error: health rpc probe failed: rpc error: code = NotFound desc = "),
            "{text}"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unreachable_server_times_out_like_kubelet() {
    let port = closed_port();
    assert_eq!(
        probe(port, None, Duration::from_secs(1)),
        Outcome::Failure(format!(
            "timeout: failed to connect service \"127.0.0.1:{port}\" within 1s: context deadline exceeded"
        ))
    );
}
