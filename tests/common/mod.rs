//! Shared helpers for podvm's integration tests: the environment checks and
//! a `podvm` runner with private state and image directories.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Why the end-to-end tests cannot run here, if they cannot.
pub fn e2e_missing() -> Option<String> {
    if !nix_is_root() {
        return Some("not running as root".into());
    }
    for tool in ["qemu-system-x86_64", "vhost-device-vsock", "mkfs.erofs"] {
        if which(tool).is_none() {
            return Some(format!("{tool} is not installed (run scripts/setup.sh)"));
        }
    }
    let guest = guest_dir();
    if !guest.join("vmlinux").is_file() || !guest.join("initramfs.cpio.gz").is_file() {
        return Some(format!(
            "no guest image in {} (run guest-image/build.sh)",
            guest.display()
        ));
    }
    let images = test_images();
    if !images.join("busybox-oci.tar").is_file() {
        return Some(format!(
            "no test images in {} (run tests/images/build-busybox.sh {})",
            images.display(),
            images.display()
        ));
    }
    None
}

/// Skips loudly; in CI a missing prerequisite is a failure, not a skip.
pub fn require_e2e(test: &str) -> bool {
    match e2e_missing() {
        None => {
            note_hypervisor(test);
            true
        }
        Some(why) => {
            podvm_testsupport::skip(test, &why);
            false
        }
    }
}

/// Says once per test binary which hypervisor `--hypervisor auto` gives
/// the pods here (builtin where KVM runs Linux, else qemu with TCG), so a
/// reader of the test output knows what the pod tests ran on.
fn note_hypervisor(test: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let line = Command::new(env!("CARGO_BIN_EXE_podvm"))
            .arg("host-check")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|out| {
                out.lines()
                    .find(|l| l.starts_with("--hypervisor auto uses"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "podvm host-check failed".into());
        podvm_testsupport::note(test, &format!("the pods of these tests: {line}"));
    });
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn guest_dir() -> PathBuf {
    std::env::var_os("PODVM_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/guest"))
}

pub fn test_images() -> PathBuf {
    std::env::var_os("PODVM_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/test-images"))
}

/// A `podvm` with its own state and image store.
pub struct Podvm {
    pub dir: tempfile::TempDir,
    /// `--hypervisor` for `apply`: `auto` unless a test says otherwise, so
    /// every pod test runs on the builtin VMM where KVM can run a Linux
    /// guest and on qemu elsewhere (`podvm host-check` says which).
    pub hypervisor: &'static str,
}

impl Podvm {
    pub fn new() -> Self {
        Podvm {
            hypervisor: "auto",
            dir: tempfile::Builder::new()
                .prefix("podvm-e2e")
                .tempdir()
                .unwrap(),
        }
    }

    /// A fresh podvm whose store holds the test image `archive` (a file of
    /// `tests/images/build-busybox.sh`'s output).
    pub fn with_image(archive: &str) -> Self {
        let p = Podvm::new();
        let path = test_images().join(archive);
        let out = p.ok(&["image", "load", "-i", path.to_str().unwrap()]);
        assert!(out.contains("Loaded image: docker.io/"), "{out}");
        p
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_podvm"));
        c.env("PODVM_STATE_DIR", self.state_dir())
            .env("PODVM_IMAGE_DIR", self.dir.path().join("images"))
            .env("PODVM_GUEST_DIR", guest_dir())
            .env("PODVM_HYPERVISOR", self.hypervisor);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd().args(args).output().unwrap();
        eprintln!(
            "$ podvm {}\n-> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs with `input` on stdin (written by a thread, so a command that
    /// streams its output as it reads cannot deadlock against us).
    pub fn run_with_input(&self, args: &[&str], input: Vec<u8>) -> Output {
        let mut child = self.spawn(args);
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        let written = writer.join().unwrap();
        eprintln!(
            "$ podvm {} < input ({})\n-> {:?}\n{}",
            args.join(" "),
            match written {
                Ok(()) => "all written".to_string(),
                Err(e) => format!("writing it failed: {e}"),
            },
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts `podvm ARGS` with stdin and stdout piped to the test.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podvm {args:?} failed");
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `podvm apply -f` of `manifest` (written as `NAME.yaml`); must succeed.
    pub fn apply_manifest(&self, name: &str, manifest: &str) {
        let file = self.write(&format!("{name}.yaml"), manifest);
        self.ok(&["apply", "-f", file.to_str().unwrap()]);
    }

    /// `get pods NAME`'s READY and STATUS columns.
    pub fn columns(&self, name: &str) -> (String, String) {
        let out = self.ok(&["get", "pods", name]);
        let row = out.lines().nth(1).unwrap_or_default().to_string();
        let cells: Vec<&str> = row.split_whitespace().collect();
        let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_string();
        (cell(1), cell(2))
    }

    /// Polls `get pod NAME -o json` until `pred` holds.
    pub fn wait_pod(
        &self,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self
                .cmd()
                .args(["get", "pod", name, "-o", "json"])
                .output()
                .unwrap();
            if out.status.success() {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                if pred(&v) {
                    return v;
                }
                if Instant::now() > deadline {
                    panic!("pod {name} did not reach the expected state: {v:#}");
                }
            } else if Instant::now() > deadline {
                panic!(
                    "get pod {name} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Podvm {
    /// A failed test must not leave VMs running: kill whatever still
    /// mentions this podvm's state folder.
    fn drop(&mut self) {
        for line in processes_mentioning(&self.state_dir()) {
            if let Some(pid) = line.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
                // SAFETY: kill(2) with a pid and a signal number has no
                // memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// Processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// The pod condition `kind` of a `get pod -o json` document (`Null` when
/// there is none).
pub fn condition<'a>(pod: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == kind))
        .unwrap_or(&serde_json::Value::Null)
}

/// The entry `name` of the status list `list` (`containerStatuses`,
/// `initContainerStatuses`) of a `get pod -o json` document.
pub fn status_of<'a>(pod: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    pod["status"][list]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {list} entry {name}: {pod:#}"))
}
