//! The hypervisor seam: a backend boots a VM from a [`VmConfig`] and
//! returns a [`VmRecord`] saying how to reach and stop it. Every backend
//! exposes the agent on a hybrid-vsock Unix socket, so the agent client and
//! the guest image are the same whichever backend runs the pod.

mod accel;
mod builtin;
mod process;
mod qemu;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub use accel::{host_kvm_verdict, KvmVerdict};
pub use builtin::Builtin;
pub use process::TrackedProcess;
pub use qemu::Qemu;

/// What a backend needs to boot a pod VM.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmConfig {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    pub memory_mib: u32,
    pub vcpus: u8,
    pub disks: Vec<DiskConfig>,
    /// A private folder for the VM's sockets and logs.
    pub run_dir: PathBuf,
}

/// A virtio-blk disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub read_only: bool,
    /// Serial number the guest sees in `/sys/block/vdX/serial` (≤ 20 bytes).
    pub serial: String,
}

/// A running VM, as saved in the pod record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    /// Backend name (`qemu`, `builtin`).
    pub hypervisor: String,
    /// How the guest runs (`kvm` or `tcg`).
    pub accel: String,
    /// Host side of the guest's vsock device (hybrid protocol).
    pub vsock_uds: PathBuf,
    /// The guest's serial console.
    pub console_log: PathBuf,
    pub run_dir: PathBuf,
    /// Processes to stop when the VM goes away, in start order.
    pub processes: Vec<TrackedProcess>,
}

impl VmRecord {
    /// Whether the VM's main process (the last one started) still runs.
    pub fn is_running(&self) -> bool {
        self.processes.last().is_some_and(|p| p.is_alive())
    }

    /// Waits up to `timeout` for the VM to end by itself, then stops every
    /// process it still has (newest first) and removes its sockets.
    pub fn stop(&self, timeout: Duration) {
        if let Some(main) = self.processes.last() {
            main.wait_gone(timeout);
        }
        for p in self.processes.iter().rev() {
            p.terminate(Duration::from_secs(3));
        }
        let _ = fs::remove_file(&self.vsock_uds);
        remove_sockets(&self.run_dir);
    }

    /// The last lines of the guest console, for error messages.
    pub fn console_tail(&self, lines: usize) -> String {
        tail(&self.console_log, lines)
    }
}

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HypervisorKind {
    /// podvm's own VMM (`podvm-vmm`).
    Builtin,
    /// `qemu-system-x86_64 -M microvm` with vhost-device-vsock.
    Qemu,
    /// builtin where KVM can run a Linux guest, qemu otherwise.
    Auto,
}

/// A way to boot a VM.
pub trait Hypervisor {
    fn name(&self) -> &'static str;
    fn start(&self, config: &VmConfig) -> Result<VmRecord>;
}

/// What `--hypervisor auto` resolves to on a host with `kvm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoChoice {
    /// KVM runs Linux guests and `podvm-vmm` is installed.
    Builtin,
    /// KVM runs Linux guests but `podvm-vmm` is not found.
    QemuKvmNoVmm,
    /// KVM cannot run a Linux guest here: qemu with TCG.
    QemuTcg,
}

impl AutoChoice {
    /// Decides `auto` for `kvm`.
    pub fn for_host(kvm: &KvmVerdict) -> Self {
        Self::decide(
            kvm.linux_capable,
            find_tool("PODVM_VMM", "podvm-vmm").is_some(),
        )
    }

    fn decide(linux_capable: bool, vmm_found: bool) -> Self {
        match (linux_capable, vmm_found) {
            (false, _) => Self::QemuTcg,
            (true, true) => Self::Builtin,
            (true, false) => Self::QemuKvmNoVmm,
        }
    }

    /// In words, for `host-check` and notes.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Builtin => "builtin (podvm-vmm on KVM)",
            Self::QemuKvmNoVmm => "qemu with -accel kvm (podvm-vmm not found)",
            Self::QemuTcg => "qemu with -accel tcg (KVM cannot run a Linux guest here)",
        }
    }
}

/// Picks the backend for `kind` on this host: `auto` is the builtin VMM
/// where the KVM probe says KVM can run a Linux guest, qemu (TCG)
/// otherwise.
pub fn select(kind: HypervisorKind) -> Result<Box<dyn Hypervisor>> {
    let kvm = host_kvm_verdict();
    match kind {
        HypervisorKind::Qemu => Ok(Box::new(Qemu::new(kvm)?)),
        HypervisorKind::Builtin => Ok(Box::new(Builtin::new(&kvm)?)),
        HypervisorKind::Auto => match AutoChoice::for_host(&kvm) {
            AutoChoice::Builtin => Ok(Box::new(Builtin::new(&kvm)?)),
            choice @ AutoChoice::QemuKvmNoVmm => {
                eprintln!("podvm: --hypervisor auto: {}", choice.describe());
                Ok(Box::new(Qemu::new(kvm)?))
            }
            AutoChoice::QemuTcg => Ok(Box::new(Qemu::new(kvm)?)),
        },
    }
}

/// Waits until `owner` created the socket at `path`.
fn wait_for_socket(path: &Path, owner: &TrackedProcess, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        if !owner.is_alive() {
            bail!("{} exited before creating {}", owner.name, path.display());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not create {} within {timeout:?}",
                owner.name,
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// `$ENV_VAR`, else `name` next to this executable, on PATH, or in podvm's
/// tool cache.
fn find_tool(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let cached = fs::read_dir("/var/cache/podvm/tools")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"));
    beside
        .into_iter()
        .chain(std::env::split_paths(&path))
        .chain(cached)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn remove_sockets(dir: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_socket()).unwrap_or(false) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The last `lines` lines of a text file ("" if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::AutoChoice;

    #[test]
    fn auto_is_builtin_only_where_kvm_runs_linux_and_the_vmm_is_there() {
        assert_eq!(AutoChoice::decide(true, true), AutoChoice::Builtin);
        assert_eq!(AutoChoice::decide(true, false), AutoChoice::QemuKvmNoVmm);
        assert_eq!(AutoChoice::decide(false, true), AutoChoice::QemuTcg);
        assert_eq!(AutoChoice::decide(false, false), AutoChoice::QemuTcg);
    }
}
