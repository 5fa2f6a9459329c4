//! Test servers on 127.0.0.1 (plain HTTP, HTTPS with a self-signed
//! certificate, gRPC health) and a prober to run probes with.
#![allow(dead_code, clippy::unwrap_used)] // tests may unwrap

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use podvm_probe::{ExecOutcome, ExecRunner, Prober};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// What a test HTTP server answers to a path: a whole raw response, or
/// nothing (the connection is held open).
pub type Responder = dyn Fn(&str) -> Option<String> + Send + Sync;

/// An HTTP(S) server on 127.0.0.1 that records request heads.
pub struct HttpServer {
    pub port: u16,
    pub heads: Arc<Mutex<Vec<String>>>,
}

impl HttpServer {
    pub fn plain(respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> HttpServer {
        Self::start(None, Arc::new(respond))
    }

    pub fn tls(respond: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> HttpServer {
        Self::start(Some(tls_config()), Arc::new(respond))
    }

    fn start(tls: Option<Arc<ServerConfig>>, respond: Arc<Responder>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let recorded = heads.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (tls, respond, recorded) = (tls.clone(), respond.clone(), recorded.clone());
                thread::spawn(move || match tls {
                    None => serve(stream, &*respond, &recorded),
                    Some(config) => {
                        let Ok(connection) = ServerConnection::new(config) else {
                            return;
                        };
                        serve(StreamOwned::new(connection, stream), &*respond, &recorded)
                    }
                });
            }
        });
        HttpServer { port, heads }
    }

    /// The request paths seen so far.
    pub fn paths(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|head| head.split(' ').nth(1).unwrap_or_default().to_owned())
            .collect()
    }
}

fn serve(mut stream: impl Read + Write, respond: &Responder, recorded: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
        if head == [0x16] {
            // A TLS hello: answer in plain HTTP, as an HTTP server does.
            let _ = stream.write_all(response("400 Bad Request", "", "").as_bytes());
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
    recorded.lock().unwrap().push(head);
    match respond(&path) {
        Some(response) => {
            let _ = stream.write_all(response.as_bytes());
            let _ = stream.flush();
        }
        None => thread::sleep(Duration::from_secs(10)),
    }
}

/// A raw response with a body.
pub fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

fn tls_config() -> Arc<ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    Arc::new(config)
}

/// A port on 127.0.0.1 where nothing listens (just released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A prober that stays in the test's own network namespace.
pub fn prober() -> Prober {
    Prober::start("probe-test", || Ok(())).unwrap()
}

/// An exec runner for probes that never run commands.
pub struct NoExec;

impl ExecRunner for NoExec {
    fn exec(&self, _command: &[String], _timeout: Duration) -> ExecOutcome {
        ExecOutcome::CouldNotRun("no exec in this test".to_owned())
    }
}

pub fn no_exec() -> Arc<dyn ExecRunner> {
    Arc::new(NoExec)
}
