//! Running a command in a container to its end within a time limit, its
//! output kept up to a bound: what exec probes (and exec hooks) need.
//!
//! The command is an [`Exec`] (the exec helper joins the container's
//! namespaces and cgroup) with no stdin; its stdout and stderr are read
//! together as they come and kept up to [`MAX_OUTPUT`] bytes (kubelet
//! keeps 10 KiB of a probe's output); the rest is read and dropped, so the
//! command never blocks on a full pipe. A command still running when the
//! time is up is killed with its process tree: every process descending
//! from it is stopped (top down, so none forks away meanwhile), then all
//! get SIGKILL. A process that already left the tree (a daemon, reparented
//! to the container's init) is out of reach, as the exec helper starts the
//! command in the container's PID namespace without a cgroup of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::output::Output;
use super::process::{Exec, ExecOptions};
use super::ExecError;
use crate::container::Container;
use crate::logs::StdStream;

/// Most output bytes kept (kubelet's `maxReadLength` for probes).
pub const MAX_OUTPUT: usize = 10 * 1024;
/// Longest time limit taken; longer ones are cut to it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long a killed command gets to end.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long the output may go on after the command ended (a process it
/// left behind may hold the pipes open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How often a reader checks whether it should stop.
const READ_SLICE: Duration = Duration::from_millis(100);
/// Most bytes a reader takes at once.
const READ_CHUNK: usize = 64 * 1024;
/// Most passes over /proc looking for more descendants.
const TREE_PASSES: usize = 32;
/// Most processes killed as one command's tree.
const TREE_MAX: usize = 4096;

/// How a command run with [`run_in_container`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    /// Its exit code (128+N when killed by signal N); `None` only if it did
    /// not end even after SIGKILL.
    pub exit_code: Option<i32>,
    /// Its stdout and stderr as they came, up to [`MAX_OUTPUT`] bytes.
    pub output: Vec<u8>,
    /// More output came than was kept.
    pub truncated: bool,
    /// It was still running when the time was up, and was killed.
    pub timed_out: bool,
}

/// Output kept up to a bound.
#[derive(Debug)]
struct Bounded {
    data: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Bounded {
    fn new(limit: usize) -> Self {
        Bounded {
            data: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.data.len());
        let kept = bytes.len().min(room);
        self.data.extend_from_slice(&bytes[..kept]);
        self.truncated |= kept < bytes.len();
    }
}

/// Runs `argv` in `container` (which must be running) with the
/// container's identity and environment; kills it with its process tree
/// if it runs longer than `timeout` (at most [`MAX_TIMEOUT`]).
pub fn run_in_container(
    container: &Container,
    argv: Vec<String>,
    timeout: Duration,
) -> Result<CommandOutcome, ExecError> {
    if argv.first().is_none_or(String::is_empty) {
        return Err(ExecError::NoCommand);
    }
    let options = ExecOptions {
        stdin: false,
        terminal: None,
    };
    let exec = Arc::new(Exec::start(container, argv, options)?);
    let output = Arc::new(Mutex::new(Bounded::new(MAX_OUTPUT)));
    let stop_reading = Arc::new(AtomicBool::new(false));
    let (done_tx, done) = mpsc::channel();
    let mut readers = 0;
    for stream in [StdStream::Stdout, StdStream::Stderr] {
        let reading = Arc::clone(&exec);
        let output = Arc::clone(&output);
        let stop = Arc::clone(&stop_reading);
        let done_tx = done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("run-in-output".into())
            .spawn(move || {
                read_to_end(reading.output(stream), &output, &stop);
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => readers += 1,
            Err(e) => {
                // Unread, the command could block on the pipe: end it.
                stop_reading.store(true, Ordering::SeqCst);
                kill_tree(&exec);
                exec.abandon();
                return Err(ExecError::Spawn(e));
            }
        }
    }
    drop(done_tx);

    let (exit_code, timed_out) = match exec.wait(timeout.min(MAX_TIMEOUT)) {
        Some(code) => (Some(code), false),
        None => {
            kill_tree(&exec);
            (exec.wait(KILL_WAIT), true)
        }
    };
    let drain_until = Instant::now() + DRAIN_AFTER_EXIT;
    for _ in 0..readers {
        let left = drain_until.saturating_duration_since(Instant::now());
        if done.recv_timeout(left).is_err() {
            break;
        }
    }
    // Readers still at it stop within a slice; the pumps then drop what
    // else comes, so nothing blocks on the pipes.
    stop_reading.store(true, Ordering::SeqCst);
    exec.abandon();
    let output = std::mem::replace(
        &mut *output.lock().unwrap_or_else(PoisonError::into_inner),
        Bounded::new(0),
    );
    Ok(CommandOutcome {
        exit_code,
        output: output.data,
        truncated: output.truncated,
        timed_out,
    })
}

/// Reads `stream` into `output` until its end or until told to stop.
fn read_to_end(stream: &Output, output: &Mutex<Bounded>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let chunk = stream.read(READ_CHUNK, READ_SLICE);
        if !chunk.data.is_empty() {
            output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(&chunk.data);
        }
        if chunk.eof {
            return;
        }
    }
}

/// Kills the exec's process and every process descending from it.
fn kill_tree(exec: &Exec) {
    // The PID is the process's until the exec helper (its parent) reaped
    // it, and the helper ends right after: one that ended is left alone.
    let Some(root) = exec.pid().filter(|_| !exec.exited()) else {
        return;
    };
    let tree = stop_tree(root);
    for pid in tree {
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// Stops `root` and its descendants, top down, until no new ones appear;
/// returns them all.
fn stop_tree(root: Pid) -> Vec<Pid> {
    let _ = kill(root, Signal::SIGSTOP);
    let mut tree = vec![root];
    for _ in 0..TREE_PASSES {
        let found: Vec<Pid> = children_of(&tree)
            .into_iter()
            .filter(|pid| !tree.contains(pid))
            .collect();
        if found.is_empty() || tree.len() >= TREE_MAX {
            break;
        }
        for pid in found.into_iter().take(TREE_MAX - tree.len()) {
            let _ = kill(pid, Signal::SIGSTOP);
            tree.push(pid);
        }
    }
    tree
}

/// The processes whose parent is one of `parents`.
fn children_of(parents: &[Pid]) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = parent_in_stat(&stat)?;
            parents
                .contains(&Pid::from_raw(ppid))
                .then_some(Pid::from_raw(pid))
        })
        .collect()
}

/// The parent PID in a `/proc/<pid>/stat` line: the second field after
/// the command name, which is in parentheses and may hold anything,
/// parentheses and spaces included.
fn parent_in_stat(stat: &str) -> Option<i32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::testing::{TestPod, LONG};

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    /// Live processes (not zombies, whose command line is empty) running
    /// exactly `args`.
    fn live_with_command(args: &[&str]) -> Vec<i32> {
        let wanted: Vec<u8> = args
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
            .collect()
    }

    #[test]
    fn a_command_that_finishes_gives_its_code_and_output() {
        let containers: &[(&str, &[&str])] = &[("app", &["sleep", "2000"]), ("done", &["true"])];
        let Some(pod) = TestPod::start("run_in_container: a command that finishes", containers)
        else {
            return;
        };
        pod.wait_running("app");
        let outcome = run_in_container(
            pod.container("app"),
            argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
            LONG,
        )
        .unwrap();
        assert_eq!(outcome.exit_code, Some(3));
        assert!(!outcome.timed_out && !outcome.truncated, "{outcome:?}");
        // The two streams come together, in the order they were read.
        let mut lines: Vec<&[u8]> = outcome.output.split_inclusive(|b| *b == b'\n').collect();
        lines.sort();
        assert_eq!(lines, [&b"err\n"[..], &b"out\n"[..]]);

        assert!(matches!(
            run_in_container(pod.container("app"), Vec::new(), LONG),
            Err(ExecError::NoCommand)
        ));
        pod.wait_finished("done");
        assert!(matches!(
            run_in_container(pod.container("done"), argv(&["true"]), LONG),
            Err(ExecError::NotRunning(name)) if name == "done"
        ));
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_children() {
        let Some(pod) = TestPod::start(
            "run_in_container: a command past its timeout",
            &[("app", &["sleep", "2000"])],
        ) else {
            return;
        };
        pod.wait_running("app");
        let outcome = run_in_container(
            pod.container("app"),
            argv(&["sh", "-c", "sleep 1001 & sleep 1002; echo never"]),
            Duration::from_secs(3),
        )
        .unwrap();
        assert!(outcome.timed_out, "{outcome:?}");
        // The shell was killed by SIGKILL...
        assert_eq!(outcome.exit_code, Some(137));
        assert!(!String::from_utf8_lossy(&outcome.output).contains("never"));
        // ...and so were both sleeps, its children.
        assert_eq!(live_with_command(&["sleep", "1001"]), Vec::<i32>::new());
        assert_eq!(live_with_command(&["sleep", "1002"]), Vec::<i32>::new());
        // The container itself runs on.
        assert!(pod.container("app").running().is_some());
    }

    #[test]
    fn output_is_bounded_and_never_blocks_the_command() {
        let Some(pod) = TestPod::start(
            "run_in_container: bounded output",
            &[("app", &["sleep", "2000"])],
        ) else {
            return;
        };
        pod.wait_running("app");
        // A megabyte: more than the exec buffers and the pipe together, so
        // the command only ends if everything is read.
        let outcome = run_in_container(
            pod.container("app"),
            argv(&["sh", "-c", "yes 0123456789 | head -c 1000000"]),
            LONG,
        )
        .unwrap();
        assert_eq!(outcome.exit_code, Some(0));
        assert!(!outcome.timed_out);
        assert!(outcome.truncated);
        assert_eq!(outcome.output.len(), MAX_OUTPUT);
        assert!(outcome.output.starts_with(b"0123456789\n0123456789\n"));
    }

    #[test]
    fn output_is_kept_up_to_the_bound() {
        let mut out = Bounded::new(10);
        out.push(b"hello");
        assert!(!out.truncated);
        out.push(b"world");
        assert_eq!(
            (out.data.as_slice(), out.truncated),
            (&b"helloworld"[..], false)
        );
        out.push(b"!");
        assert_eq!(
            (out.data.as_slice(), out.truncated),
            (&b"helloworld"[..], true)
        );
        let mut out = Bounded::new(4);
        out.push(b"abcdef");
        assert_eq!((out.data.as_slice(), out.truncated), (&b"abcd"[..], true));
    }

    #[test]
    fn stat_lines_give_the_parent() {
        assert_eq!(parent_in_stat("42 (sh) S 7 42 42 0 -1"), Some(7));
        // A command name made to look like more fields.
        assert_eq!(parent_in_stat("42 (a) S 1 (b) R 9) S 13 42 42"), Some(13));
        assert_eq!(parent_in_stat("42 (sh)"), None);
        assert_eq!(parent_in_stat("garbage"), None);
        assert_eq!(parent_in_stat("42 (sh) S x"), None);
    }

    #[test]
    fn the_tree_is_our_children_and_theirs() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        crate::pod::testing::start_reaper();
        // A shell with a child of its own: both stopped by stop_tree, then
        // killed here.
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "sleep 1000 & echo started; wait"])
            .stdout(Stdio::piped());
        let (mut shell, exit) = crate::reaper::spawn(&mut cmd).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(shell.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "started\n");
        let root = Pid::from_raw(shell.id() as i32);
        let tree = stop_tree(root);
        assert_eq!(tree.len(), 2, "{tree:?}");
        assert_eq!(tree[0], root);
        for pid in &tree {
            kill(*pid, Signal::SIGKILL).unwrap();
        }
        assert_eq!(exit.wait(), crate::reaper::ExitStatus::Signaled(9));
    }
}
