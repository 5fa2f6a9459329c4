//! Logs (CRI format, tail, follow) and exec.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::os::fd::IntoRawFd;
use std::time::Duration;

use common::{code_of, container, pod, TestAgent};
use podvm_proto::pb::agent as pb;
use podvm_proto::pb::agent_ttrpc::AgentClient;
use ttrpc::context::with_duration;
use ttrpc::Code;

fn check_cri_line(line: &str) -> (&str, &str, &str) {
    let mut parts = line.splitn(4, ' ');
    let (ts, stream, tag, text) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts
            .next()
            .unwrap_or_else(|| panic!("short line {line:?}")),
    );
    assert!(ts.ends_with('Z'), "{line}");
    assert_eq!(
        ts.split('.').nth(1).map(str::len),
        Some(10),
        "not RFC3339Nano: {line}"
    );
    ts.parse::<jiff::Timestamp>().unwrap();
    (stream, tag, text)
}

#[test]
fn logs_have_cri_format_streams_tail_and_follow() {
    require_env!();
    let agent = TestAgent::start();
    let script = "echo out1; echo err1 >&2; echo out2; sleep 0.5; printf 'no newline'";
    let long = "head -c 20000 /dev/zero | tr '\\0' x; echo";
    agent.create(pod(vec![
        container("talker", &agent.rootfs, &["sh", "-c", script]),
        container("long", &agent.rootfs, &["sh", "-c", long]),
    ]));
    // Follow from the start: everything arrives, then End once it exited.
    let followed = String::from_utf8(agent.try_log_bytes("talker", None, true).unwrap()).unwrap();
    let lines: Vec<(&str, &str, &str)> = followed.lines().map(check_cri_line).collect();
    // The two streams are separate pipes: only the order within one is fixed.
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("stderr", "F", "err1"),
            ("stdout", "F", "no newline"),
            ("stdout", "F", "out1"),
            ("stdout", "F", "out2"),
        ]
    );
    assert_eq!(lines.len(), 4, "{followed}");
    let stdout: Vec<&str> = lines
        .iter()
        .filter(|l| l.0 == "stdout")
        .map(|l| l.2)
        .collect();
    assert_eq!(stdout, ["out1", "out2", "no newline"]);
    agent.wait_terminated("talker");

    let tail = agent.logs("talker", Some(1));
    assert_eq!(tail.lines().count(), 1);
    assert_eq!(check_cri_line(tail.trim_end()).2, "no newline");
    assert_eq!(agent.logs("talker", Some(0)), "");

    agent.wait_terminated("long");
    let long_log = agent.logs("long", None);
    let parts: Vec<(&str, &str, &str)> = long_log.lines().map(check_cri_line).collect();
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert_eq!((parts[0].1, parts[0].2.len()), ("P", 16384));
    assert_eq!((parts[1].1, parts[1].2.len()), ("F", 20000 - 16384));

    assert_eq!(
        code_of(agent.try_log_bytes("nope", None, false)),
        Code::NOT_FOUND
    );
}

#[test]
fn exec_runs_inside_the_container() {
    require_env!();
    let agent = TestAgent::start();
    let mut app = container("app", &agent.rootfs, &["sleep", "1000"]);
    app.run_as_user = Some(1000);
    app.working_dir = Some("/home/app".into());
    agent.create(pod(vec![app, container("done", &agent.rootfs, &["true"])]));
    agent.wait_running("app");

    let (out, err, code) = agent.exec(
        "app",
        &["sh", "-c", "cat; echo; echo oops >&2; exit 7"],
        b"input bytes",
    );
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("input bytes\n", "oops\n", 7)
    );

    let (out, _, code) = agent.exec(
        "app",
        &[
            "sh",
            "-c",
            "echo $(id -u) $(pwd) $(hostname) $HOSTNAME; cat /proc/1/cmdline | tr '\\0' ' '",
        ],
        b"",
    );
    assert_eq!(code, 0);
    assert_eq!(
        out, "1000 /home/app testpod-host testpod-host\nsleep 1000 ",
        "exec is not in the container"
    );

    let (_, err, code) = agent.exec("app", &["no-such-command"], b"");
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found"), "{err}");

    let (_, _, code) = agent.exec("app", &["sh", "-c", "kill -9 $$"], b"");
    assert_eq!(code, 137);

    agent.wait_terminated("done");
    let conn = agent.conn();
    let argv = vec!["true".to_string()];
    assert_eq!(
        code_of(conn.exec("done", &argv, false)),
        Code::FAILED_PRECONDITION
    );
    assert_eq!(code_of(conn.exec("nope", &argv, false)), Code::NOT_FOUND);
    assert_eq!(
        code_of(conn.exec("app", &[], false)),
        Code::INVALID_ARGUMENT
    );
}

#[test]
fn read_log_offsets_and_chunks() {
    require_env!();
    let agent = TestAgent::start();
    // 3000 lines of 100 bytes: about 400 KiB of log.
    let script = "i=0; while [ $i -lt 3000 ]; do printf '%099d\\n' $i; i=$((i+1)); done";
    agent.create(pod(vec![container(
        "many",
        &agent.rootfs,
        &["sh", "-c", script],
    )]));
    agent.wait_terminated("many");
    let whole = agent.try_log_bytes("many", None, false).unwrap();
    assert_eq!(whole.iter().filter(|b| **b == b'\n').count(), 3000);

    let rpc = AgentClient::new(ttrpc::Client::new(agent.connect().into_raw_fd()).unwrap());
    let read = |offset: u64, len: u32, tail_lines: Option<u64>| {
        rpc.read_log(
            with_duration(Duration::from_secs(30)),
            &pb::ReadLogRequest {
                container: "many".into(),
                offset,
                tail_lines,
                follow: false,
                len,
                ..Default::default()
            },
        )
    };
    // Small asks get whole lines in chunks of at least 64 KiB; the chunks
    // put together are the log.
    let mut assembled = Vec::new();
    let mut offset = 0;
    loop {
        let chunk = read(offset, 1, None).unwrap();
        assert!(chunk.data.len() <= 1 << 20);
        assert!(chunk.data.is_empty() || chunk.data.ends_with(b"\n"));
        assert_eq!(chunk.next_offset, offset + chunk.data.len() as u64);
        assembled.extend_from_slice(&chunk.data);
        offset = chunk.next_offset;
        if chunk.end {
            break;
        }
        assert!(chunk.data.len() >= 64 * 1024 - 200, "{}", chunk.data.len());
    }
    assert!(assembled == whole);
    // The last two lines, from where they start.
    let tail = read(0, 0, Some(2)).unwrap();
    assert!(tail.end);
    assert!(whole.ends_with(&tail.data));
    assert_eq!(tail.data.iter().filter(|b| **b == b'\n').count(), 2);
    assert_eq!(tail.next_offset, whole.len() as u64);
    // Offsets past the end or inside a line are refused.
    for bad in [whole.len() as u64 + 1, 5, u64::MAX] {
        match read(bad, 0, None) {
            Err(ttrpc::Error::RpcStatus(s)) => assert_eq!(s.code(), Code::INVALID_ARGUMENT),
            other => panic!("offset {bad}: {other:?}"),
        }
    }
    // At the very end: nothing, and the end.
    let at_end = read(whole.len() as u64, 0, None).unwrap();
    assert!(at_end.data.is_empty() && at_end.end);
}
