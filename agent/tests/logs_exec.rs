//! Logs (CRI format, tail, follow) and exec.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{collect_logs, container, pod, TestAgent};
use podvm_proto::{ErrorCode, Request, Response};

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
    let followed = collect_logs(agent.request(&Request::Logs {
        container: "talker".into(),
        follow: true,
        tail_lines: None,
    }));
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

    let missing = agent.call(&Request::Logs {
        container: "nope".into(),
        follow: false,
        tail_lines: None,
    });
    assert!(
        matches!(
            missing,
            Response::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{missing:?}"
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
    let reply = agent.call(&Request::Exec {
        container: "done".into(),
        argv: vec!["true".into()],
        stdin: vec![],
    });
    assert!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::FailedPrecondition,
                ..
            }
        ),
        "{reply:?}"
    );
    let reply = agent.call(&Request::Exec {
        container: "nope".into(),
        argv: vec!["true".into()],
        stdin: vec![],
    });
    assert!(
        matches!(
            reply,
            Response::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{reply:?}"
    );
}
