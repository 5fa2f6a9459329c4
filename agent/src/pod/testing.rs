//! Test support: a real pod inside the unit-test process (as root, with
//! overlayfs and a busybox root filesystem), so the agent's own functions
//! can be tested against real containers.
//!
//! The test process is libtest's, not the agent, so the helper processes
//! (sandbox holder, launcher, exec helper) are the agent binary that
//! `cargo test -p podvm-agent` builds next to the test binary (see
//! `spawn::helper_command`). Tests skip loudly when it is missing or older
//! than the agent's sources.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime};

use podvm_proto::{ContainerSpec, ImageConfig, RestartPolicy, RootfsSource, SandboxSpec};

use super::Pod;
use crate::container::{Container, RunningInfo};
use crate::events::EventLog;
use crate::rundir::RunDir;

/// Last-resort limit for waits that progress ends.
pub const LONG: Duration = Duration::from_secs(120);

/// The agent binary built beside this test binary
/// (`target/<profile>/podvm-agent`, the test being in `deps/`).
pub fn agent_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("podvm-agent")))
        .unwrap_or_else(|| PathBuf::from("podvm-agent"))
}

/// The newest modification time of the files under `dir`.
fn newest_under(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let meta = entry.metadata().ok()?;
        let time = if meta.is_dir() {
            newest_under(&entry.path())
        } else {
            meta.modified().ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// Why a real pod cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.trim_end().ends_with("overlay")) {
        return Some("no overlayfs in /proc/filesystems".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("no /bin/busybox (install busybox-static)".into());
    }
    let binary = agent_binary();
    let Ok(built) = std::fs::metadata(&binary).and_then(|m| m.modified()) else {
        return Some(format!(
            "no agent binary at {} for the helper processes (cargo test -p podvm-agent builds it)",
            binary.display()
        ));
    };
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if newest_under(&sources).is_some_and(|newest| newest > built) {
        return Some(format!(
            "the agent binary {} is older than {} (cargo test -p podvm-agent rebuilds it)",
            binary.display(),
            sources.display()
        ));
    }
    None
}

/// Starts the agent's reaper thread in this process, once. Children must
/// then be spawned through `reaper::spawn`, never waited for otherwise.
pub fn start_reaper() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| crate::reaper::start().unwrap());
}

/// Builds a busybox root filesystem under `dir`.
fn busybox_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let mut list = Command::new("/bin/busybox");
    list.arg("--list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let (mut child, exit) = crate::reaper::spawn(&mut list).unwrap();
    let mut applets = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut applets).unwrap();
    exit.wait();
    for applet in applets.lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    root
}

/// A pod of busybox containers in a temporary run directory; stopped and
/// cleaned up when dropped.
pub struct TestPod {
    pub pod: Arc<Pod>,
    run: RunDir,
    _dir: tempfile::TempDir,
}

impl TestPod {
    /// Starts a pod whose containers run the given commands (restart
    /// policy Never); `None` (after a loud skip line) where it cannot run.
    pub fn start(test: &str, containers: &[(&str, &[&str])]) -> Option<TestPod> {
        if let Some(why) = skip_reason() {
            podvm_testsupport::skip(test, &why);
            return None;
        }
        start_reaper();
        let dir = tempfile::tempdir().unwrap();
        let rootfs = busybox_rootfs(dir.path());
        let run = RunDir::setup(&dir.path().join("run")).unwrap();
        let spec = SandboxSpec {
            name: "unitpod".into(),
            namespace: "default".into(),
            uid: "0000-2222".into(),
            hostname: "unitpod".into(),
            host_aliases: Vec::new(),
            restart_policy: RestartPolicy::Never,
            termination_grace_period_seconds: 1,
            init_containers: Vec::new(),
            containers: containers
                .iter()
                .map(|(name, command)| container(name, &rootfs, command))
                .collect(),
            active_deadline_seconds: None,
            volumes: Vec::new(),
        };
        let pod = match Pod::create(run.clone(), None, spec, Arc::new(EventLog::new())) {
            Ok(pod) => pod,
            Err(e) => {
                run.teardown();
                panic!("creating the pod: {e}");
            }
        };
        pod.start_containers();
        Some(TestPod {
            pod,
            run,
            _dir: dir,
        })
    }

    pub fn container(&self, name: &str) -> &Arc<Container> {
        self.pod.container(name).unwrap()
    }

    /// Waits until the container runs.
    pub fn wait_running(&self, name: &str) -> RunningInfo {
        let c = self.container(name);
        let deadline = Instant::now() + LONG;
        loop {
            let seen = c.wake.current();
            if let Some(info) = c.running() {
                return info;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{name} never ran: {:?}", c.status());
            c.wake.wait_past(seen, left);
        }
    }

    /// Waits until the container will not run again.
    pub fn wait_finished(&self, name: &str) {
        let c = self.container(name);
        let deadline = Instant::now() + LONG;
        loop {
            let seen = c.wake.current();
            if c.is_finished() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{name} never finished: {:?}", c.status());
            c.wake.wait_past(seen, left);
        }
    }

    /// Waits until the container's log holds `text`.
    pub fn wait_log(&self, name: &str, text: &str) -> String {
        let c = self.container(name);
        let deadline = Instant::now() + LONG;
        loop {
            let seen = c.wake.current();
            let log = std::fs::read_to_string(c.current_log()).unwrap_or_default();
            if log.contains(text) {
                return log;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{name} never logged {text:?}: {log:?}");
            c.wake.wait_past(seen, left);
        }
    }
}

impl Drop for TestPod {
    fn drop(&mut self) {
        self.pod.stop(Duration::ZERO, true);
        self.run.teardown();
    }
}

/// A busybox container running `command`.
fn container(name: &str, rootfs: &Path, command: &[&str]) -> ContainerSpec {
    let image_config = ImageConfig {
        env: vec!["PATH=/bin".into()],
        ..ImageConfig::default()
    };
    let rootfs = RootfsSource::Directory {
        path: rootfs.to_path_buf(),
    };
    ContainerSpec {
        command: command.iter().map(|s| s.to_string()).collect(),
        ..ContainerSpec::new(
            name,
            "busybox:test",
            format!("sha256:{}", "0".repeat(64)),
            image_config,
            rootfs,
        )
    }
}
