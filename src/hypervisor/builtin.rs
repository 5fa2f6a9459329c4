//! The builtin backend: one `podvm-vmm run` process per VM (rust-vmm based,
//! `vmm/`). It serves the same hybrid-vsock socket as the qemu backend, so
//! the agent client and the guest image are shared.
//!
//! It needs a KVM that can run a Linux guest (see [`super::KvmVerdict`]);
//! on other hosts it refuses to start rather than boot a guest that cannot
//! reach userspace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{
    find_tool, tail, wait_for_socket, Hypervisor, KvmVerdict, TrackedProcess, VmConfig, VmRecord,
};

/// Guest CID of every VM (each VM has its own vsock device and socket).
const GUEST_CID: u32 = 3;

pub struct Builtin {
    vmm: PathBuf,
}

impl Builtin {
    pub fn new(kvm: &KvmVerdict) -> Result<Self> {
        if !kvm.linux_capable {
            bail!(
                "the builtin hypervisor needs a KVM that can run a Linux guest, and this host's cannot ({}); use --hypervisor qemu",
                kvm.detail
            );
        }
        let vmm = find_tool("PODVM_VMM", "podvm-vmm").context(
            "podvm-vmm not found next to podvm, on PATH or in PODVM_VMM (cargo build --release -p podvm-vmm)",
        )?;
        Ok(Builtin { vmm })
    }

    /// The `podvm-vmm run` arguments for `cfg`.
    fn args(cfg: &VmConfig, uds: &Path, console: &Path) -> Result<Vec<String>> {
        let mut a = vec![
            "run".to_string(),
            "--kernel".into(),
            cfg.kernel.display().to_string(),
            "--initrd".into(),
            cfg.initrd.display().to_string(),
            "--cmdline".into(),
            cfg.cmdline.clone(),
            "--memory-mib".into(),
            cfg.memory_mib.to_string(),
            "--vcpus".into(),
            cfg.vcpus.to_string(),
            "--serial".into(),
            format!("file:{}", console.display()),
            "--rng".into(),
            "--vsock".into(),
            format!("uds={},cid={GUEST_CID}", plain(uds)?),
        ];
        for d in &cfg.disks {
            a.push("--disk".into());
            a.push(format!(
                "path={},ro={},serial={}",
                plain(&d.path)?,
                d.read_only,
                d.serial
            ));
        }
        Ok(a)
    }
}

/// A path usable inside podvm-vmm's `key=value,…` device syntax.
fn plain(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?;
    if s.contains(',') || s.contains('=') {
        bail!("{s}: paths given to podvm-vmm must not contain ',' or '='");
    }
    Ok(s.to_string())
}

impl Hypervisor for Builtin {
    fn name(&self) -> &'static str {
        "builtin"
    }

    fn start(&self, cfg: &VmConfig) -> Result<VmRecord> {
        let uds = cfg.run_dir.join("vsock.sock");
        let console = cfg.run_dir.join("console.log");
        let mut record = VmRecord {
            hypervisor: self.name().into(),
            accel: "kvm".into(),
            vsock_uds: uds.clone(),
            console_log: console.clone(),
            run_dir: cfg.run_dir.clone(),
            processes: Vec::new(),
        };
        let mut cmd = Command::new(&self.vmm);
        cmd.args(Self::args(cfg, &uds, &console)?);
        let log = cfg.run_dir.join("podvm-vmm.log");
        let vmm = TrackedProcess::spawn("podvm-vmm", cmd, &log)?;
        record.processes.push(vmm.clone());
        if let Err(e) = wait_for_socket(&uds, &vmm, Duration::from_secs(10)) {
            record.stop(Duration::ZERO);
            bail!("{e}\npodvm-vmm log:\n{}", tail(&log, 20));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::DiskConfig;

    #[test]
    fn refuses_a_kvm_that_cannot_run_linux() {
        let kvm = KvmVerdict {
            linux_capable: false,
            detail: "kvm_pvm".into(),
        };
        let err = Builtin::new(&kvm).err().unwrap().to_string();
        assert!(err.contains("cannot (kvm_pvm)"), "{err}");
    }

    #[test]
    fn builds_the_vmm_command_line() {
        let cfg = VmConfig {
            kernel: "/g/vmlinux".into(),
            initrd: "/g/initrd".into(),
            cmdline: "console=ttyS0 quiet".into(),
            memory_mib: 256,
            vcpus: 2,
            disks: vec![DiskConfig {
                path: "/img/a.erofs".into(),
                read_only: true,
                serial: "podvm-img0".into(),
            }],
            run_dir: "/run/x".into(),
        };
        let a = Builtin::args(
            &cfg,
            Path::new("/run/x/vsock.sock"),
            Path::new("/run/x/console.log"),
        )
        .unwrap();
        let line = a.join(" ");
        assert!(
            line.starts_with("run --kernel /g/vmlinux --initrd /g/initrd"),
            "{line}"
        );
        assert!(
            line.contains("--memory-mib 256 --vcpus 2 --serial file:/run/x/console.log --rng"),
            "{line}"
        );
        assert!(
            line.contains("--vsock uds=/run/x/vsock.sock,cid=3"),
            "{line}"
        );
        assert!(
            line.ends_with("--disk path=/img/a.erofs,ro=true,serial=podvm-img0"),
            "{line}"
        );
        let bad = VmConfig {
            disks: vec![DiskConfig {
                path: "/img/a,b".into(),
                read_only: true,
                serial: "s".into(),
            }],
            ..cfg
        };
        assert!(Builtin::args(&bad, Path::new("/u"), Path::new("/c")).is_err());
    }
}
