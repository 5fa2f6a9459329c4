//! Shared by the integration tests that boot the no_std test guest
//! (`vmm/test-guest`) with the `podvm-vmm` binary: building the guest
//! (per boot-entry variant), the prerequisite checks that skip loudly, and
//! running the VMM with a deadline while timing its first serial byte.

#![allow(dead_code)] // each test file uses part of this module

pub mod bzimage;
mod guest_build;
pub mod vsock;

use guest_build::{build_guest, guest_target_missing};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The last-resort limit on one VM run, after which the test kills it.
/// The end waited for is an event, the VMM's exit; the test guest's runs
/// take 0.05-0.3 s here even while other builds load the host, so this
/// only stops a hung VMM and is far from any slow day's figure.
pub const VM_DEADLINE: Duration = Duration::from_secs(60);

/// Which boot entry the test guest is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// Entered at the ELF entry in 64-bit mode (Linux 64-bit boot protocol).
    Linux64,
    /// Also carries a PVH ELF note (cargo feature `pvh`): entered in
    /// 32-bit protected mode with `ebx` = `hvm_start_info`.
    Pvh,
}

/// Builds the test guest once per variant; `Err` says why it cannot be built here.
pub fn test_guest(boot: Boot) -> Result<&'static Path, String> {
    static LINUX64: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static PVH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = match boot {
        Boot::Linux64 => &LINUX64,
        Boot::Pvh => &PVH,
    };
    cell.get_or_init(|| {
        if let Some(why) = guest_target_missing() {
            return Err(why);
        }
        let (dir, features): (&str, &[&str]) = match boot {
            Boot::Linux64 => ("test-guest", &[]),
            Boot::Pvh => ("test-guest-pvh", &["--features", "pvh"]),
        };
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
        // A target that is installed but does not build is a failure, not a skip.
        Ok(build_guest(&target_dir, features).unwrap_or_else(|e| panic!("{e}")))
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// The guest image, or `None` after printing why the test is skipped.
pub fn prerequisites(test: &str, boot: Boot) -> Option<&'static Path> {
    if !Path::new("/dev/kvm").exists() {
        podvm_testsupport::skip(test, "/dev/kvm is absent on this machine");
        return None;
    }
    match test_guest(boot) {
        Ok(path) => Some(path),
        Err(why) => {
            podvm_testsupport::skip(test, &why);
            None
        }
    }
}

/// What a VM run left behind.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Time from spawning the VMM to its first byte on stdout.
    pub first_stdout_byte: Option<Duration>,
}

/// A running `podvm-vmm` whose stdout and stderr are read from the start,
/// so that however much it writes it never blocks on a full pipe.
struct Spawned {
    child: Child,
    started: Instant,
    args: Vec<String>,
    /// When the first stdout byte came, and all of stdout.
    stdout: JoinHandle<(Option<Duration>, Vec<u8>)>,
    stderr: JoinHandle<(Option<Duration>, Vec<u8>)>,
}

/// Reads `pipe` to its end on a thread, noting when its first byte came.
fn read_all(
    mut pipe: impl Read + Send + 'static,
    started: Instant,
) -> JoinHandle<(Option<Duration>, Vec<u8>)> {
    std::thread::spawn(move || {
        let mut first = None;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| started.elapsed());
            all.extend_from_slice(&buf[..n]);
        }
        (first, all)
    })
}

impl Spawned {
    /// Starts `podvm-vmm run` with `args`.
    fn start(args: &[&str]) -> Self {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_podvm-vmm"))
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn podvm-vmm");
        let stdout = read_all(child.stdout.take().expect("stdout piped"), started);
        let stderr = read_all(child.stderr.take().expect("stderr piped"), started);
        Self {
            child,
            started,
            args: args.iter().map(|a| a.to_string()).collect(),
            stdout,
            stderr,
        }
    }

    /// Waits for the exit (killing the VMM after [`VM_DEADLINE`]), collects
    /// the output and prints it.
    fn finish(mut self) -> Run {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for podvm-vmm") {
                break Some(status);
            }
            if self.started.elapsed() > VM_DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let (first_stdout_byte, stdout) = self.stdout.join().expect("stdout reader");
        let (_, stderr) = self.stderr.join().expect("stderr reader");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        );
        let ended = status.map_or("killed at the deadline".to_string(), |s| s.to_string());
        eprintln!(
            "podvm-vmm {:?}: {ended} in {:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            self.args,
            self.started.elapsed(),
        );
        let Some(status) = status else {
            panic!("podvm-vmm still running after {VM_DEADLINE:?}");
        };
        Run {
            status,
            stdout,
            stderr,
            first_stdout_byte,
        }
    }

    /// Kills the VMM and prints its output.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (_, stdout) = self.stdout.join().unwrap_or_default();
        let (_, stderr) = self.stderr.join().unwrap_or_default();
        eprintln!(
            "podvm-vmm {:?}: killed\n--- stdout\n{}--- stderr\n{}",
            self.args,
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    }
}

/// Asserts that the test guest printed `ok CHECK` for each of `checks`.
pub fn assert_ok_lines(run: &Run, checks: &[&str]) {
    for check in checks {
        assert!(
            run.stdout.contains(&format!("ok {check}\n")),
            "check {check} did not pass:\n{}",
            run.stdout
        );
    }
}

/// Runs `podvm-vmm run` with `args` to its end (at most [`VM_DEADLINE`]).
pub fn podvm_vmm(args: &[&str]) -> Run {
    Spawned::start(args).finish()
}

/// A `podvm-vmm run` in the background, for tests that play the host side
/// while the guest runs; killed if dropped before [`Vm::wait`].
pub struct Vm(Option<Spawned>);

/// Starts `podvm-vmm run` with `args` without waiting for it.
pub fn spawn_podvm_vmm(args: &[&str]) -> Vm {
    Vm(Some(Spawned::start(args)))
}

impl Vm {
    /// Waits for the VMM to exit (under [`VM_DEADLINE`]) and prints its output.
    pub fn wait(mut self) -> Run {
        self.0.take().expect("not waited yet").finish()
    }
}

impl Drop for Vm {
    /// Kills a VMM not waited for (the test failed) and shows its output.
    fn drop(&mut self) {
        if let Some(spawned) = self.0.take() {
            spawned.kill();
        }
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
