//! The `Exec` request: run a command in a running container through the
//! exec helper, stream its output as `Output` frames, feed it the request's
//! stdin, and finish with `ExecExit`.

use std::fs::File;
use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::mpsc;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use podvm_proto::{ErrorCode, FrameError, Response, StdStream};

use crate::conn::Conn;
use crate::container::config::ExecConfig;
use crate::container::Container;
use crate::spawn::{helper_command, spawn_helper, EXEC};

enum Event {
    Data(StdStream, Vec<u8>),
    Closed,
}

fn pump(
    mut pipe: impl Read + Send + 'static,
    stream: StdStream,
    tx: mpsc::Sender<Event>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("exec-output".into())
        .spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(Event::Data(stream, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(Event::Closed);
        })?;
    Ok(())
}

/// Serves one `Exec` request for `container`.
pub fn serve(
    conn: &mut Conn,
    container: &Container,
    argv: Vec<String>,
    stdin: Vec<u8>,
) -> Result<(), FrameError> {
    if argv.is_empty() || argv[0].is_empty() {
        return conn.send(&Response::error(
            ErrorCode::BadRequest,
            "exec needs a command",
        ));
    }
    let Some(running) = container.running() else {
        return conn.send(&Response::error(
            ErrorCode::FailedPrecondition,
            format!("container {} is not running", container.name()),
        ));
    };
    let mut process = running.process;
    process.argv = argv;
    let config = ExecConfig {
        pid: running.pid,
        cgroup: running.cgroup,
        process,
    };
    let config = serde_json::to_vec(&config).map_err(FrameError::Malformed)?;
    let mut cmd = helper_command(EXEC);
    cmd.current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut helper = match spawn_helper(cmd, &config, false) {
        Ok(h) => h,
        Err(e) => {
            return conn.send(&Response::error(
                ErrorCode::Internal,
                format!("starting exec: {e}"),
            ));
        }
    };
    let (tx, rx) = mpsc::channel();
    let mut pipes = 0;
    if let Some(out) = helper.child.stdout.take() {
        pump(out, StdStream::Stdout, tx.clone()).map_err(FrameError::Io)?;
        pipes += 1;
    }
    if let Some(err) = helper.child.stderr.take() {
        pump(err, StdStream::Stderr, tx.clone()).map_err(FrameError::Io)?;
        pipes += 1;
    }
    drop(tx);
    if let Some(input) = helper.child.stdin.take() {
        feed_stdin(input, stdin);
    }
    let helper_pid = Pid::from_raw(helper.child.id() as i32);
    let mut client_gone = false;
    while pipes > 0 {
        match rx.recv() {
            Ok(Event::Data(stream, data)) if !client_gone => {
                if conn.send(&Response::Output { stream, data }).is_err() {
                    // Nobody is listening any more: ask the process to end
                    // (the helper forwards SIGHUP) and just drain.
                    client_gone = true;
                    let _ = kill(helper_pid, Signal::SIGHUP);
                }
            }
            Ok(Event::Data(..)) => {}
            Ok(Event::Closed) | Err(_) => pipes -= 1,
        }
    }
    let code = helper.exit.wait().code();
    if client_gone {
        return Ok(());
    }
    conn.send(&Response::ExecExit { exit_code: code })
}

/// Writes the request's stdin bytes on a thread, then closes the pipe.
fn feed_stdin(input: std::process::ChildStdin, data: Vec<u8>) {
    let mut input: File = File::from(std::os::fd::OwnedFd::from(input));
    let spawned = std::thread::Builder::new()
        .name("exec-stdin".into())
        .spawn(move || {
            let _ = input.write_all(&data);
        });
    // Without a thread the pipe is simply closed (the process sees EOF).
    drop(spawned);
}
