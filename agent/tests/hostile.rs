//! Hostile clients: bytes that are not ttrpc, frames that lie about their
//! size or stop short, unknown methods, payloads that do not decode, too
//! many connections and too many calls. Each gets an error answer or a
//! closed connection, and the agent keeps serving a normal client.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::TestAgent;
use podvm_proto::client::QUICK_CALL;
use podvm_proto::pb::agent as pb;
use protobuf::Message;
use ttrpc::Code;

/// ttrpc's frame header: length, stream id (both big-endian), type, flags.
const HEADER_LEN: usize = 10;
const TYPE_REQUEST: u8 = 1;
const TYPE_RESPONSE: u8 = 2;

fn frame(len: u32, stream_id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&stream_id.to_be_bytes());
    v.push(kind);
    v.push(0);
    v.extend_from_slice(payload);
    v
}

/// An encoded ttrpc request envelope.
fn request(service: &str, method: &str, payload: Vec<u8>) -> Vec<u8> {
    let mut r = ttrpc::Request::new();
    r.service = service.into();
    r.method = method.into();
    r.payload = payload;
    r.write_to_bytes().unwrap()
}

fn request_frame(stream_id: u32, service: &str, method: &str, payload: Vec<u8>) -> Vec<u8> {
    let body = request(service, method, payload);
    frame(body.len() as u32, stream_id, TYPE_REQUEST, &body)
}

/// The next response frame on `s` (stream id and the decoded envelope), or
/// `None` when the agent closed the connection.
fn next_response(s: &mut UnixStream) -> Option<(u32, ttrpc::Response)> {
    let mut header = [0u8; HEADER_LEN];
    match s.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("reading a frame: {e}"),
    }
    let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let stream_id = u32::from_be_bytes(header[4..8].try_into().unwrap());
    assert_eq!(header[8], TYPE_RESPONSE, "not a response frame");
    assert!(len <= 4 << 20, "a response of {len} bytes");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    Some((stream_id, ttrpc::Response::parse_from_bytes(&body).unwrap()))
}

/// Every response until the agent closes the connection.
fn responses_until_closed(s: &mut UnixStream) -> Vec<(u32, ttrpc::Response)> {
    let mut all = Vec::new();
    while let Some(r) = next_response(s) {
        all.push(r);
    }
    all
}

fn status_code(r: &ttrpc::Response) -> Code {
    r.status.code.enum_value_or(Code::UNKNOWN)
}

/// The agent answers a normal client.
fn assert_serving(agent: &TestAgent) {
    assert!(agent.conn().check(QUICK_CALL).unwrap());
    assert!(agent.status().containers.is_empty());
}

/// Whether the agent serves connection `s`: it answers a `Check` (true)
/// or closes the connection (false).
fn served(s: &mut UnixStream) -> bool {
    let check = pb::CheckRequest::default().write_to_bytes().unwrap();
    let probe = request_frame(1, "podvm.agent.v2.Health", "Check", check);
    if s.write_all(&probe).is_err() {
        return false;
    }
    match next_response(s) {
        Some((id, r)) => {
            assert_eq!((id, status_code(&r)), (1, Code::OK), "{r:?}");
            true
        }
        None => false,
    }
}

/// Waits until a new connection is served again.
fn wait_until_served(agent: &TestAgent) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !served(&mut agent.connect()) {
        assert!(Instant::now() < deadline, "the agent did not recover");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bytes_that_are_not_ttrpc_end_the_connection() {
    require_env!();
    let agent = TestAgent::start();
    let cases: [(&str, Vec<u8>); 5] = [
        // Its first four bytes announce a 1.2 GB frame.
        ("http", b"GET / HTTP/1.1\r\nHost: agent\r\n\r\n".to_vec()),
        ("short header", vec![0, 0, 0]),
        ("unknown frame type", frame(4, 1, 0x7f, b"junk")),
        (
            "envelope that does not decode",
            frame(6, 1, TYPE_REQUEST, &[0xff; 6]),
        ),
        (
            "binary noise",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = agent.connect();
        s.write_all(&bytes).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // An error answer at most, then the agent closes the connection.
        for (_, r) in responses_until_closed(&mut s) {
            assert_ne!(status_code(&r), Code::OK, "{what}: {r:?}");
        }
        assert_serving(&agent);
    }
    // A client that connects and goes away without a word.
    drop(agent.connect());
    assert_serving(&agent);
}

#[test]
fn frames_that_lie_about_their_size() {
    require_env!();
    let agent = TestAgent::start();

    // Announces 100 MiB, sends a little and keeps the connection open: the
    // agent waits for the rest on that connection only.
    let mut lying = agent.connect();
    lying
        .write_all(&frame(100 << 20, 1, TYPE_REQUEST, &[0u8; 1000]))
        .unwrap();
    assert_serving(&agent);
    // ... and when it gives up, the agent answers with an error and closes.
    lying.shutdown(Shutdown::Write).unwrap();
    let answers = responses_until_closed(&mut lying);
    assert!(
        answers
            .iter()
            .all(|(id, r)| *id == 1 && status_code(r) == Code::INVALID_ARGUMENT),
        "{answers:?}"
    );

    // A truncated frame: a header for 100 bytes and 10 of them.
    let mut truncated = agent.connect();
    truncated
        .write_all(&frame(100, 3, TYPE_REQUEST, &[1u8; 10]))
        .unwrap();
    truncated.shutdown(Shutdown::Write).unwrap();
    for (_, r) in responses_until_closed(&mut truncated) {
        assert_ne!(status_code(&r), Code::OK);
    }

    // A real frame over the 4 MiB limit is refused for its stream, and
    // the connection goes on serving the next request.
    let mut big = agent.connect();
    let oversized = request_frame(5, "podvm.agent.v2.Health", "Check", vec![7u8; 5 << 20]);
    big.write_all(&oversized).unwrap();
    let (id, r) = next_response(&mut big).unwrap();
    assert_eq!((id, status_code(&r)), (5, Code::INVALID_ARGUMENT), "{r:?}");
    let check = pb::CheckRequest::default().write_to_bytes().unwrap();
    big.write_all(&request_frame(7, "podvm.agent.v2.Health", "Check", check))
        .unwrap();
    let (id, r) = next_response(&mut big).unwrap();
    assert_eq!((id, status_code(&r)), (7, Code::OK), "{r:?}");
    let answer = pb::CheckResponse::parse_from_bytes(&r.payload).unwrap();
    assert_eq!(
        answer.status.enum_value(),
        Ok(pb::check_response::ServingStatus::SERVING)
    );
    drop(big);
    assert_serving(&agent);
}

#[test]
fn unknown_methods_and_undecodable_payloads_get_error_answers() {
    require_env!();
    let agent = TestAgent::start();
    let client = ttrpc::Client::new(agent.connect().into_raw_fd()).unwrap();
    let call = |service: &str, method: &str, payload: Vec<u8>| {
        let mut req = ttrpc::Request::new();
        req.service = service.into();
        req.method = method.into();
        req.payload = payload;
        req.timeout_nano = QUICK_CALL.as_nanos() as i64;
        client.request(req)
    };
    for (service, method) in [
        ("podvm.agent.v2.Agent", "Explode"),
        ("podvm.agent.v9.Agent", "CreateSandbox"),
        ("", ""),
    ] {
        match call(service, method, Vec::new()) {
            Err(ttrpc::Error::RpcStatus(s)) => assert_ne!(s.code(), Code::OK),
            other => panic!("{service}/{method}: {other:?}"),
        }
    }
    // Known methods, payloads that are not their message: INVALID_ARGUMENT,
    // and the connection stays usable.
    for method in ["CreateSandbox", "ExecProcess", "ReadLog"] {
        match call("podvm.agent.v2.Agent", method, vec![0xff; 16]) {
            Err(ttrpc::Error::RpcStatus(s)) => {
                assert_eq!(s.code(), Code::INVALID_ARGUMENT, "{method}: {s:?}")
            }
            other => panic!("{method}: {other:?}"),
        }
    }
    let check = pb::CheckRequest::default().write_to_bytes().unwrap();
    let answer = call("podvm.agent.v2.Health", "Check", check).unwrap();
    assert_eq!(status_code(&answer), Code::OK);
    assert_serving(&agent);
}

#[test]
fn connections_beyond_the_limit_are_refused_not_queued() {
    require_env!();
    let agent = TestAgent::start();
    // 64 clients that said something and then nothing hold every slot.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while held.len() < 64 {
        let mut s = agent.connect();
        if served(&mut s) {
            held.push(s);
        }
        assert!(Instant::now() < deadline, "only {} served", held.len());
    }
    // The next one is closed at once, not queued.
    assert!(!served(&mut agent.connect()), "65th connection was served");
    assert!(!served(&mut agent.connect()), "66th connection was served");
    // The held ones are still served.
    assert!(served(&mut held[0]));
    drop(held);
    wait_until_served(&agent);
    assert_serving(&agent);
}

#[test]
fn a_flood_of_connections_is_cut_to_the_limit() {
    require_env!();
    let agent = TestAgent::start();
    // 200 connections at once, before any says a word.
    let mut flood: Vec<UnixStream> = (0..200).map(|_| agent.connect()).collect();
    let served_count = flood.iter_mut().map(served).filter(|&s| s).count();
    assert_eq!(served_count, 64);
    drop(flood);
    wait_until_served(&agent);
    assert_serving(&agent);
}

#[test]
fn calls_beyond_the_limit_are_refused_at_once() {
    require_env!();
    let agent = TestAgent::start();
    let conn = agent.conn();
    let generation = conn.events(0, 0).unwrap().status_generation;
    // 80 event watches that have nothing to wait for but the hold, on one
    // connection: 64 are held, the others refused at once.
    let watches: Vec<_> = (0..80)
        .map(|_| {
            let conn = conn.clone();
            std::thread::spawn(move || conn.events(u64::MAX, generation))
        })
        .collect();
    let results: Vec<_> = watches.into_iter().map(|w| w.join().unwrap()).collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == Some(Code::RESOURCE_EXHAUSTED)))
        .count();
    let answered = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((answered, refused), (64, 16), "{results:?}");
    assert_serving(&agent);
}
