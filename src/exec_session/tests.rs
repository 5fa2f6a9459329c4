//! The exec orchestration against a fake agent whose process is `cat` on
//! stdout (it echoes what stdin brought) and replays a script on stderr.

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Write};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use podvm_proto::limits::MAX_WRITE_CHUNK;
use podvm_proto::{ClientError, OutputStream};

use super::{run, ExecApi, ExecError, ExecRequest, Terminal, WindowSize};

/// Last-resort limit; only a broken test waits this long.
const GENEROUS: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    started: Option<(String, Vec<String>, bool)>,
    /// Stdin bytes not yet echoed on stdout.
    unread: Vec<u8>,
    stdin_total: usize,
    stdin_closed: bool,
    write_calls: usize,
    /// Writes answered "0 taken" before any bytes are taken.
    zero_takes: usize,
    /// Most bytes one write takes.
    take_at_most: Option<usize>,
    /// Stderr replies; when empty, stderr blocks until `released`.
    stderr: VecDeque<Option<Vec<u8>>>,
    released: bool,
    ended_streams: usize,
    waited: bool,
    fail_exec: bool,
    exit_code: i32,
    /// The terminal size the exec started with, and every resize.
    sizes: Vec<WindowSize>,
}

#[derive(Clone, Default)]
struct Fake(Arc<(Mutex<State>, Condvar)>);

impl Fake {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0 .0.lock().expect("lock")
    }
    fn changed(&self) {
        self.0 .1.notify_all();
    }
    fn wait_change<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.0 .1.wait_timeout(guard, GENEROUS).expect("lock").0
    }
}

fn broken(message: &str) -> ClientError {
    ClientError::Transport(message.into())
}

impl ExecApi for Fake {
    fn exec(&self, container: &str, argv: &[String], stdin: bool) -> Result<String, ClientError> {
        let mut st = self.state();
        if st.fail_exec {
            return Err(broken("no such container"));
        }
        st.started = Some((container.into(), argv.to_vec(), stdin));
        Ok("exec-1".into())
    }

    fn write_stdin(&self, exec_id: &str, data: &[u8]) -> Result<usize, ClientError> {
        assert_eq!(exec_id, "exec-1");
        assert!(
            !data.is_empty() && data.len() <= MAX_WRITE_CHUNK,
            "{}",
            data.len()
        );
        let mut st = self.state();
        assert!(!st.stdin_closed);
        st.write_calls += 1;
        if st.zero_takes > 0 {
            st.zero_takes -= 1;
            return Ok(0);
        }
        let n = st.take_at_most.map_or(data.len(), |m| m.min(data.len()));
        st.unread.extend_from_slice(&data[..n]);
        st.stdin_total += n;
        drop(st);
        self.changed();
        Ok(n)
    }

    fn exec_on_terminal(
        &self,
        container: &str,
        argv: &[String],
        size: WindowSize,
    ) -> Result<String, ClientError> {
        self.state().sizes.push(size);
        self.exec(container, argv, true)
    }

    fn resize(&self, exec_id: &str, size: WindowSize) -> Result<(), ClientError> {
        assert_eq!(exec_id, "exec-1");
        self.state().sizes.push(size);
        self.changed();
        Ok(())
    }

    fn close_stdin(&self, exec_id: &str) -> Result<(), ClientError> {
        assert_eq!(exec_id, "exec-1");
        self.state().stdin_closed = true;
        self.changed();
        Ok(())
    }

    fn read_output(
        &self,
        exec_id: &str,
        stream: OutputStream,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        assert_eq!(exec_id, "exec-1");
        let mut st = self.state();
        let reply = match stream {
            OutputStream::Stdout => loop {
                if !st.unread.is_empty() {
                    break Some(std::mem::take(&mut st.unread));
                }
                if st.stdin_closed || st.started.as_ref().is_some_and(|s| !s.2) {
                    break None;
                }
                st = self.wait_change(st);
            },
            OutputStream::Stderr => loop {
                if let Some(r) = st.stderr.pop_front() {
                    break r;
                }
                if st.released {
                    break None;
                }
                st = self.wait_change(st);
            },
        };
        if reply.is_none() {
            st.ended_streams += 1;
        }
        Ok(reply)
    }

    fn wait(&self, exec_id: &str) -> Result<i32, ClientError> {
        assert_eq!(exec_id, "exec-1");
        // Answers at once, as the agent does for a process that exited:
        // the exec runs its wait alongside the output pumps, and must still
        // deliver all the output before it returns the code.
        let mut st = self.state();
        st.waited = true;
        Ok(st.exit_code)
    }
}

/// An output sink the test can look into while the exec runs.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("lock").clone()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A host output that is gone (a closed pipe).
struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A host stdin that delivers what the test sends, when it sends it.
struct Typed {
    rx: mpsc::Receiver<Vec<u8>>,
    pending: Cursor<Vec<u8>>,
}

impl Read for Typed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.position() as usize == self.pending.get_ref().len() {
            match self.rx.recv() {
                Ok(chunk) => self.pending = Cursor::new(chunk),
                Err(_) => return Ok(0),
            }
        }
        self.pending.read(buf)
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

/// Runs `run` on its own thread so a hang fails the test instead of
/// blocking it.
fn run_bounded<R, O, E>(
    fake: &Fake,
    argv: Vec<String>,
    stdin: Option<R>,
    stdout: O,
    stderr: E,
) -> Result<i32, ExecError>
where
    R: Read + Send + 'static,
    O: Write + Send + 'static,
    E: Write + Send + 'static,
{
    run_bounded_on(fake, argv, stdin, stdout, stderr, None)
}

fn run_bounded_on<R, O, E>(
    fake: &Fake,
    argv: Vec<String>,
    stdin: Option<R>,
    stdout: O,
    stderr: E,
    terminal: Option<Terminal>,
) -> Result<i32, ExecError>
where
    R: Read + Send + 'static,
    O: Write + Send + 'static,
    E: Write + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let fake = fake.clone();
    std::thread::spawn(move || {
        let req = ExecRequest {
            container: "main",
            argv: &argv,
            stdin,
            stdout,
            stderr,
            terminal,
        };
        let _ = tx.send(run(&fake, req));
    });
    rx.recv_timeout(GENEROUS).expect("the exec did not finish")
}

#[test]
fn stdin_is_streamed_as_it_comes_and_output_is_byte_exact() {
    let fake = Fake::default();
    {
        let mut st = fake.state();
        st.take_at_most = Some(3);
        st.zero_takes = 2;
        st.stderr = VecDeque::from([Some(all_bytes()), Some(Vec::new()), Some(b"!".to_vec())]);
        st.released = true;
        st.exit_code = 7;
    }
    let (stdin_tx, stdin_rx) = mpsc::channel();
    let typed = Typed {
        rx: stdin_rx,
        pending: Cursor::new(Vec::new()),
    };
    let (out, err) = (Sink::default(), Sink::default());
    let runner = {
        let (fake, out, err) = (fake.clone(), out.clone(), err.clone());
        std::thread::spawn(move || run_bounded(&fake, argv(&["cat"]), Some(typed), out, err))
    };

    // The first chunk comes back before the host's stdin has ended: it
    // was passed on as it came, not read to the end first.
    stdin_tx.send(b"ping\x00\xff\n".to_vec()).expect("send");
    let deadline = Instant::now() + GENEROUS;
    while out.bytes() != b"ping\x00\xff\n" {
        assert!(
            Instant::now() < deadline,
            "echo never came: {:?}",
            out.bytes()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!fake.state().stdin_closed);
    stdin_tx.send(b"pong".to_vec()).expect("send");
    drop(stdin_tx);

    let code = runner.join().expect("runner").expect("exec");
    assert_eq!(code, 7);
    assert_eq!(out.bytes(), b"ping\x00\xff\npong");
    let mut want_err = all_bytes();
    want_err.push(b'!');
    assert_eq!(err.bytes(), want_err);
    let st = fake.state();
    assert_eq!(st.started, Some(("main".into(), argv(&["cat"]), true)));
    assert!(st.stdin_closed);
    assert!(st.waited);
    assert_eq!(
        st.ended_streams, 2,
        "the code came after both streams ended"
    );
    // Two refusals, then 7 + 4 bytes taken 3 at a time.
    assert_eq!(st.write_calls, 2 + 3 + 2, "partial takes are retried");
}

#[test]
fn large_stdin_goes_in_bounded_chunks_and_arrives_whole() {
    let fake = Fake::default();
    fake.state().released = true;
    let input: Vec<u8> = all_bytes()
        .into_iter()
        .cycle()
        .take(2 * MAX_WRITE_CHUNK + 12345)
        .collect();
    let out = Sink::default();
    let code = run_bounded(
        &fake,
        argv(&["cat"]),
        Some(Cursor::new(input.clone())),
        out.clone(),
        Sink::default(),
    )
    .expect("exec");
    assert_eq!(code, 0);
    assert_eq!(fake.state().stdin_total, input.len());
    assert!(out.bytes() == input, "stdout differs from stdin");
}

#[test]
fn without_stdin_the_process_gets_none_and_no_write_is_made() {
    let fake = Fake::default();
    {
        let mut st = fake.state();
        st.stderr = VecDeque::from([Some(b"oops\n".to_vec())]);
        st.released = true;
        st.exit_code = 3;
    }
    let err = Sink::default();
    let code = run_bounded(
        &fake,
        argv(&["false"]),
        None::<io::Empty>,
        Sink::default(),
        err.clone(),
    )
    .expect("exec");
    assert_eq!(code, 3);
    assert_eq!(err.bytes(), b"oops\n");
    let st = fake.state();
    assert_eq!(st.started.as_ref().map(|s| s.2), Some(false));
    assert_eq!(st.write_calls, 0);
}

#[test]
fn a_failing_host_output_ends_the_exec_without_waiting_for_the_other_stream() {
    let fake = Fake::default();
    // stderr never ends until released; stdout has bytes for a closed pipe.
    let result = run_bounded(
        &fake,
        argv(&["cat"]),
        Some(Cursor::new(b"data".to_vec())),
        BrokenPipe,
        Sink::default(),
    );
    assert!(
        matches!(
            result,
            Err(ExecError::Write {
                stream: "stdout",
                ..
            })
        ),
        "{result:?}"
    );
    fake.state().released = true;
    fake.changed();
}

#[test]
fn a_refused_exec_is_an_error() {
    let fake = Fake::default();
    fake.state().fail_exec = true;
    let result = run_bounded(
        &fake,
        argv(&["x"]),
        None::<io::Empty>,
        Sink::default(),
        Sink::default(),
    );
    assert!(matches!(result, Err(ExecError::Start(_))), "{result:?}");
}

#[test]
fn a_terminal_exec_starts_with_the_size_and_forwards_every_resize() {
    let fake = Fake::default();
    {
        let mut st = fake.state();
        st.released = true;
        st.exit_code = 3;
    }
    let (resize_tx, resizes) = mpsc::channel();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>();
    let first = WindowSize { rows: 24, cols: 80 };
    let terminal = Terminal {
        size: first,
        resizes,
    };
    let runner = {
        let fake = fake.clone();
        std::thread::spawn(move || {
            run_bounded_on(
                &fake,
                vec!["sh".into()],
                Some(Typed {
                    rx: stdin_rx,
                    pending: Cursor::new(Vec::new()),
                }),
                io::sink(),
                io::sink(),
                Some(terminal),
            )
        })
    };
    let bigger = WindowSize {
        rows: 50,
        cols: 132,
    };
    resize_tx.send(bigger).unwrap();
    {
        let mut st = fake.state();
        let limit = Instant::now() + GENEROUS;
        while st.sizes.len() < 2 {
            assert!(Instant::now() < limit, "the resize was not forwarded");
            st = fake.wait_change(st);
        }
        assert_eq!(st.sizes, [first, bigger]);
        assert!(
            st.started.as_ref().is_some_and(|s| s.2),
            "a terminal has stdin"
        );
    }
    drop(stdin_tx);
    assert_eq!(runner.join().unwrap().unwrap(), 3);
}
