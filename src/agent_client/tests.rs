//! The dial and the version exchange against a fake hybrid-vsock endpoint
//! that answers the `CONNECT` line and then one ttrpc call, `Health.Version`,
//! encoded by hand (so the test does not share the code under test).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use podvm_proto::{PROTOCOL_MAJOR, PROTOCOL_MINOR};

use super::{AgentClient, CLIENT_NAME, MIN_AGENT_MINOR};

/// Last-resort limit; only a broken test waits this long.
const GENEROUS: Duration = Duration::from_secs(60);

/// How the fake answers.
#[derive(Clone)]
struct Script {
    /// Connections closed right after the `CONNECT` line (nobody listens).
    refuse_first: usize,
    /// The handshake reply line.
    reply: &'static str,
    /// The protocol version the fake agent claims.
    major: u32,
    minor: u32,
}

/// What the fake saw.
#[derive(Default)]
struct Seen {
    connects: AtomicUsize,
    /// `(service, method, client)` of each ttrpc request.
    calls: Mutex<Vec<(String, String, String)>>,
}

struct Fake {
    _dir: tempfile::TempDir,
    uds: std::path::PathBuf,
    seen: Arc<Seen>,
}

fn start(script: Script) -> Fake {
    let dir = tempfile::tempdir().expect("tempdir");
    let uds = dir.path().join("vsock.sock");
    let listener = UnixListener::bind(&uds).expect("bind");
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let n = seen2.connects.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            let seen = seen2.clone();
            std::thread::spawn(move || serve(conn, n, &script, &seen));
        }
    });
    Fake {
        _dir: dir,
        uds,
        seen,
    }
}

fn serve(mut conn: UnixStream, n: usize, script: &Script, seen: &Seen) {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while conn.read_exact(&mut b).is_ok() && b[0] != b'\n' {
        line.push(b[0]);
    }
    assert_eq!(line, b"CONNECT 1024");
    if n < script.refuse_first {
        return;
    }
    if conn.write_all(script.reply.as_bytes()).is_err() {
        return;
    }
    loop {
        let mut header = [0u8; 10];
        if conn.read_exact(&mut header).is_err() {
            return;
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let stream_id = [header[4], header[5], header[6], header[7]];
        let mut body = vec![0u8; len];
        if conn.read_exact(&mut body).is_err() {
            return;
        }
        let req = fields(&body);
        let payload = fields(field(&req, 3));
        seen.calls.lock().expect("lock").push((
            text(field(&req, 1)),
            text(field(&req, 2)),
            text(field(&payload, 3)),
        ));
        // VersionResponse { protocol_major, protocol_minor, agent_version }.
        let mut version = Vec::new();
        put_varint(&mut version, 1, u64::from(script.major));
        put_varint(&mut version, 2, u64::from(script.minor));
        put_bytes(&mut version, 3, b"fake-agent 9");
        // ttrpc Response { payload = 2 } (no status: OK).
        let mut response = Vec::new();
        put_bytes(&mut response, 2, &version);
        let mut frame = (response.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&stream_id);
        frame.extend_from_slice(&[2, 0]); // MESSAGE_TYPE_RESPONSE, no flags
        frame.extend_from_slice(&response);
        if conn.write_all(&frame).is_err() {
            return;
        }
    }
}

fn varint(buf: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
    }
    v
}

/// The length-delimited fields of a protobuf message, by number (varints
/// are skipped).
fn fields(buf: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at);
        match key & 7 {
            0 => {
                varint(buf, &mut at);
            }
            2 => {
                let len = varint(buf, &mut at) as usize;
                out.push((key >> 3, buf[at..at + len].to_vec()));
                at += len;
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    out
}

fn field(fields: &[(u64, Vec<u8>)], number: u64) -> &[u8] {
    fields
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8")
}

fn put_raw_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A varint field (wire type 0).
fn put_varint(out: &mut Vec<u8>, number: u64, v: u64) {
    put_raw_varint(out, number << 3);
    put_raw_varint(out, v);
}

/// A length-delimited field (wire type 2).
fn put_bytes(out: &mut Vec<u8>, number: u64, data: &[u8]) {
    put_raw_varint(out, (number << 3) | 2);
    put_raw_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn script(refuse_first: usize, major: u32) -> Script {
    Script {
        refuse_first,
        reply: "OK 1024\n",
        major,
        minor: PROTOCOL_MINOR,
    }
}

#[test]
fn dial_retries_until_the_agent_listens_then_exchanges_versions() {
    let fake = start(script(3, PROTOCOL_MAJOR));
    let client = AgentClient::new(&fake.uds);
    let (_conn, version) = client
        .connect(Instant::now() + GENEROUS, &|| true)
        .expect("connects");
    assert_eq!(version.agent_version, "fake-agent 9");
    assert_eq!(version.protocol_major, PROTOCOL_MAJOR);
    assert_eq!(fake.seen.connects.load(Ordering::SeqCst), 4);
    let calls = fake.seen.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        vec![(
            "podvm.agent.v2.Health".to_string(),
            "Version".to_string(),
            CLIENT_NAME.to_string()
        )]
    );
}

#[test]
fn an_agent_of_another_major_version_is_refused_naming_both() {
    let fake = start(script(0, PROTOCOL_MAJOR + 1));
    let err = AgentClient::new(&fake.uds)
        .connect(Instant::now() + GENEROUS, &|| true)
        .err()
        .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("{}.{PROTOCOL_MINOR}", PROTOCOL_MAJOR + 1)),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")),
        "{msg}"
    );
    assert_eq!(fake.seen.connects.load(Ordering::SeqCst), 1, "not retried");
}

#[test]
fn an_agent_older_than_the_pod_lifecycle_is_refused() {
    let mut s = script(0, PROTOCOL_MAJOR);
    s.minor = MIN_AGENT_MINOR - 1;
    let fake = start(s);
    let err = AgentClient::new(&fake.uds)
        .connect(Instant::now() + GENEROUS, &|| true)
        .err()
        .expect("refused");
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!(
            "speaks protocol {PROTOCOL_MAJOR}.{}, podvm needs {PROTOCOL_MAJOR}.{MIN_AGENT_MINOR} or later",
            MIN_AGENT_MINOR - 1
        )),
        "{msg}"
    );
}

#[test]
fn a_wrong_handshake_reply_is_not_retried() {
    let mut s = script(0, PROTOCOL_MAJOR);
    s.reply = "NO such port\n";
    let fake = start(s);
    let err = AgentClient::new(&fake.uds)
        .connect(Instant::now() + GENEROUS, &|| true)
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("unexpected vsock handshake reply"));
    assert_eq!(fake.seen.connects.load(Ordering::SeqCst), 1);
}

#[test]
fn a_dead_vm_fails_without_waiting_for_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = AgentClient::new(&dir.path().join("absent.sock"));
    let t = Instant::now();
    let err = client
        .connect(Instant::now() + GENEROUS, &|| false)
        .err()
        .expect("fails");
    assert!(
        format!("{err:#}").contains("the VM is not running"),
        "{err:#}"
    );
    assert!(t.elapsed() < GENEROUS / 2);
}
