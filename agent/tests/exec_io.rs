//! Exec as separate calls (ExecProcess, WriteStdin, CloseStdin,
//! ReadStdout/ReadStderr, SignalProcess, WaitProcess) and bytes that are
//! not text: stdin streamed in chunks, binary output through exec and
//! through the container's log, byte for byte.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{code_of, container, pod, read_output, write_all_stdin, TestAgent};
use podvm_proto::pb::agent as pb;
use podvm_proto::pb::agent_ttrpc::AgentClient;
use podvm_proto::OutputStream;
use ttrpc::Code;

/// `n` bytes that are not text (a simple generator; every byte value).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn argv(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn eight_mib_of_stdin_arrive_byte_exact() {
    require_env!();
    let agent = TestAgent::start();
    let input = noise(8 << 20);
    // The same bytes in the image, to compare with inside the container.
    std::fs::write(agent.rootfs.join("expected.bin"), &input).unwrap();
    agent.create(pod(vec![container(
        "app",
        &agent.rootfs,
        &["sleep", "1000"],
    )]));
    agent.wait_running("app");
    let (out, err, code) = agent.exec(
        "app",
        &[
            "sh",
            "-c",
            "cat > /tmp/got && wc -c < /tmp/got && cmp /tmp/got /expected.bin && echo same",
        ],
        &input,
    );
    assert_eq!((out.as_str(), code), ("8388608\nsame\n", 0), "{err}");
    // And straight back out: stdin to stdout, all of it, in order.
    let (echoed, _, code) = agent.exec_bytes("app", &["cat"], &input);
    assert_eq!(code, 0);
    assert!(
        echoed == input,
        "cat returned {} different bytes",
        echoed.len()
    );
}

#[test]
fn binary_output_survives_exec_and_the_log() {
    require_env!();
    let agent = TestAgent::start();
    let all: Vec<u8> = (0..=255u8).collect();
    std::fs::write(agent.rootfs.join("bytes.bin"), &all).unwrap();
    agent.create(pod(vec![
        container("app", &agent.rootfs, &["sleep", "1000"]),
        container("printer", &agent.rootfs, &["cat", "/bytes.bin"]),
    ]));
    agent.wait_running("app");
    let (out, err, code) = agent.exec_bytes(
        "app",
        &["sh", "-c", "cat /bytes.bin; cat /bytes.bin >&2"],
        b"",
    );
    assert_eq!(code, 0);
    assert_eq!(out, all);
    assert_eq!(err, all);

    agent.wait_terminated("printer");
    let log = agent.try_log_bytes("printer", None, false).unwrap();
    // Two records, split at the one 0x0a: bytes 0..=9, then 11..=255 (the
    // unterminated last line is written when the stream ends).
    let texts: Vec<&[u8]> = log
        .split_inclusive(|b| *b == b'\n')
        .map(|record| {
            let mut fields = record.splitn(4, |b| *b == b' ');
            let (_ts, stream, tag) = (fields.next(), fields.next(), fields.next());
            assert_eq!((stream, tag), (Some(&b"stdout"[..]), Some(&b"F"[..])));
            let text = fields.next().unwrap();
            &text[..text.len() - 1]
        })
        .collect();
    assert_eq!(texts, [&all[..10], &all[11..]]);
}

#[test]
fn read_and_wait_semantics() {
    require_env!();
    let agent = TestAgent::with_sleeper("app");
    let conn = agent.conn();

    // Output, then end of stream; the exit code; then the exec is gone.
    let id = conn
        .exec(
            "app",
            &argv(&["sh", "-c", "echo out; echo err >&2; exit 7"]),
            false,
        )
        .unwrap();
    assert_eq!(read_output(&conn, &id, OutputStream::Stdout), b"out\n");
    assert_eq!(read_output(&conn, &id, OutputStream::Stderr), b"err\n");
    assert_eq!(conn.wait(&id).unwrap(), 7);
    assert_eq!(code_of(conn.wait(&id)), Code::NOT_FOUND);
    assert_eq!(
        code_of(conn.read_output(&id, OutputStream::Stdout)),
        Code::NOT_FOUND
    );

    // Without stdin the process reads end of file at once; stdin calls
    // are refused.
    let id = conn.exec("app", &argv(&["cat"]), false).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 0);
    let id = conn.exec("app", &argv(&["sleep", "1000"]), false).unwrap();
    assert_eq!(
        code_of(conn.write_stdin(&id, b"x")),
        Code::FAILED_PRECONDITION
    );

    // A signal ends it with 128+N; bad signal numbers are refused.
    assert_eq!(code_of(conn.signal(&id, 0)), Code::INVALID_ARGUMENT);
    assert_eq!(code_of(conn.signal(&id, 4096)), Code::INVALID_ARGUMENT);
    conn.signal(&id, 15).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 128 + 15);
    assert_eq!(read_output(&conn, &id, OutputStream::Stdout), b"");

    // The output is still readable after the exit code was taken.
    let id = conn
        .exec("app", &argv(&["sh", "-c", "echo late"]), false)
        .unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 0);
    assert_eq!(read_output(&conn, &id, OutputStream::Stdout), b"late\n");
    assert_eq!(code_of(conn.signal(&id, 15)), Code::NOT_FOUND);

    // Stdin stays open until closed; closed stdin refuses writes.
    let id = conn.exec("app", &argv(&["cat"]), true).unwrap();
    write_all_stdin(&conn, &id, b"one ");
    write_all_stdin(&conn, &id, b"two");
    conn.close_stdin(&id).unwrap();
    assert_eq!(
        code_of(conn.write_stdin(&id, b"three")),
        Code::FAILED_PRECONDITION
    );
    assert_eq!(read_output(&conn, &id, OutputStream::Stdout), b"one two");
    assert_eq!(conn.wait(&id).unwrap(), 0);

    // Unknown ids.
    for id in ["", "nope", &"f".repeat(64)] {
        assert_eq!(code_of(conn.wait(id)), Code::NOT_FOUND);
        assert_eq!(code_of(conn.signal(id, 9)), Code::NOT_FOUND);
        assert_eq!(code_of(conn.write_stdin(id, b"x")), Code::NOT_FOUND);
        assert_eq!(code_of(conn.close_stdin(id)), Code::NOT_FOUND);
        assert_eq!(
            code_of(conn.read_output(id, OutputStream::Stderr)),
            Code::NOT_FOUND
        );
    }
}

#[test]
fn long_polls_answer_before_the_client_deadline() {
    require_env!();
    let agent = TestAgent::with_sleeper("app");
    let conn = agent.conn();
    let id = conn.exec("app", &argv(&["sleep", "1000"]), false).unwrap();
    // A raw client with a 6 s deadline: the agent holds the polls for
    // half of it and answers "nothing yet" well before the client gives up.
    let stream = UnixStream::connect(&agent.socket).unwrap();
    let raw = AgentClient::new(ttrpc::Client::new(stream.into_raw_fd()).unwrap());
    let ctx = || ttrpc::context::with_duration(Duration::from_secs(6));
    match raw.wait_process(
        ctx(),
        &pb::WaitProcessRequest {
            exec_id: id.clone(),
            ..Default::default()
        },
    ) {
        Err(ttrpc::Error::RpcStatus(s)) => assert_eq!(s.code(), Code::DEADLINE_EXCEEDED, "{s:?}"),
        other => panic!("{other:?}"),
    }
    let read = raw
        .read_stdout(
            ctx(),
            &pb::ReadStreamRequest {
                exec_id: id.clone(),
                len: 100,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(read.data.is_empty() && !read.eof, "{read:?}");
    conn.signal(&id, 9).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 137);
}

#[test]
fn exec_limits() {
    require_env!();
    let agent = TestAgent::with_sleeper("app");
    let conn = agent.conn();
    let too_big = vec![0u8; podvm_proto::limits::MAX_WRITE_CHUNK + 1];
    let id = conn.exec("app", &argv(&["cat"]), true).unwrap();
    assert_eq!(
        code_of(conn.write_stdin(&id, &too_big)),
        Code::INVALID_ARGUMENT
    );
    conn.close_stdin(&id).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 0);

    // Running execs are never evicted: beyond the limit, refused.
    let running: Vec<String> = (0..32)
        .map(|_| conn.exec("app", &argv(&["sleep", "1000"]), false).unwrap())
        .collect();
    assert_eq!(
        code_of(conn.exec("app", &argv(&["true"]), false)),
        Code::RESOURCE_EXHAUSTED
    );
    // One that ended (and was never waited for) makes room for a new one.
    conn.signal(&running[0], 9).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let id = loop {
        match conn.exec("app", &argv(&["true"]), false) {
            Ok(id) => break id,
            Err(e) if e.code() == Some(Code::RESOURCE_EXHAUSTED) => {
                assert!(std::time::Instant::now() < deadline, "no room was made");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(conn.wait(&id).unwrap(), 0);
    assert_eq!(code_of(conn.wait(&running[0])), Code::NOT_FOUND);
    for id in &running[1..] {
        conn.signal(id, 9).unwrap();
        assert_eq!(conn.wait(id).unwrap(), 137);
    }
}

/// Reads an exec's stdout until `needle` has appeared; returns all of it.
fn read_until(conn: &podvm_proto::AgentConn, id: &str, needle: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while !data.windows(needle.len()).any(|w| w == needle) {
        match conn.read_output(id, OutputStream::Stdout).unwrap() {
            Some(chunk) => data.extend_from_slice(&chunk),
            None => panic!(
                "{:?} never came: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&data)
            ),
        }
    }
    data
}

#[test]
fn exec_on_a_terminal() {
    require_env!();
    let agent = TestAgent::with_sleeper("app");
    let conn = agent.conn();

    // Stdio is a terminal of the container's own devpts, of the asked
    // size, controlling the process's session; TERM is set.
    let script = "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; tty; stty size; \
                  echo TERM=$TERM; echo err >&2";
    let id = conn
        .exec_on_terminal("app", &argv(&["sh", "-c", script]), 30, 100)
        .unwrap();
    let out = read_output(&conn, &id, OutputStream::Stdout);
    assert_eq!(read_output(&conn, &id, OutputStream::Stderr), b"");
    assert_eq!(conn.wait(&id).unwrap(), 0);
    let out = String::from_utf8(out).unwrap();
    // The line discipline ends lines with \r\n; stderr is the terminal too.
    assert!(out.starts_with("all-tty\r\n/dev/pts/"), "{out:?}");
    assert!(
        out.ends_with("\r\n30 100\r\nTERM=xterm\r\nerr\r\n"),
        "{out:?}"
    );

    // Typed input is echoed and read; closing stdin is ^D.
    let id = conn.exec_on_terminal("app", &argv(&["cat"]), 0, 0).unwrap();
    write_all_stdin(&conn, &id, b"hello\n");
    let seen = read_until(&conn, &id, b"hello\r\nhello\r\n");
    assert_eq!(seen, b"hello\r\nhello\r\n");
    conn.close_stdin(&id).unwrap();
    assert_eq!(read_output(&conn, &id, OutputStream::Stdout), b"");
    assert_eq!(conn.wait(&id).unwrap(), 0);

    // A resize reaches the process as SIGWINCH with the new size.
    let script = "trap 'stty size' WINCH; stty size; while true; do sleep 0.05; done";
    let id = conn
        .exec_on_terminal("app", &argv(&["sh", "-c", script]), 24, 80)
        .unwrap();
    read_until(&conn, &id, b"24 80\r\n");
    conn.resize_terminal(&id, 50, 132).unwrap();
    read_until(&conn, &id, b"50 132\r\n");
    assert_eq!(
        code_of(conn.resize_terminal(&id, 0, 10)),
        Code::INVALID_ARGUMENT
    );
    conn.signal(&id, 9).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 137);

    // An exec without a terminal cannot be resized.
    let id = conn.exec("app", &argv(&["sleep", "1000"]), false).unwrap();
    assert_eq!(
        code_of(conn.resize_terminal(&id, 10, 10)),
        Code::FAILED_PRECONDITION
    );
    conn.signal(&id, 9).unwrap();
    assert_eq!(conn.wait(&id).unwrap(), 137);
}
