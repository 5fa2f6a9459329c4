//! The qemu backend: `qemu-system-x86_64 -M microvm` with virtio-mmio
//! devices, `-accel kvm` where KVM can run a Linux guest and `-accel tcg`
//! otherwise. Vsock comes from a `vhost-device-vsock` process per VM
//! (vhost-user), whose host side is a hybrid-vsock Unix socket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{
    find_tool, tail, wait_for_socket, Hypervisor, KvmVerdict, TrackedProcess, VmConfig, VmRecord,
};

/// Guest CID given to every VM (each VM has its own vsock device and socket).
const GUEST_CID: u32 = 3;

pub struct Qemu {
    qemu: PathBuf,
    vhost_vsock: PathBuf,
    kvm: KvmVerdict,
}

impl Qemu {
    pub fn new(kvm: KvmVerdict) -> Result<Self> {
        let qemu = find_tool("PODVM_QEMU", "qemu-system-x86_64").context(
            "qemu-system-x86_64 not found (install the qemu-system-x86 package, or set PODVM_QEMU)",
        )?;
        let vhost_vsock = find_tool("PODVM_VHOST_DEVICE_VSOCK", "vhost-device-vsock").context(
            "vhost-device-vsock not found (run scripts/setup.sh, which does `cargo install vhost-device-vsock`, or set PODVM_VHOST_DEVICE_VSOCK)",
        )?;
        Ok(Qemu {
            qemu,
            vhost_vsock,
            kvm,
        })
    }

    fn accel(&self) -> &'static str {
        if self.kvm.linux_capable {
            "kvm"
        } else {
            "tcg"
        }
    }

    fn qemu_args(&self, cfg: &VmConfig, vu_sock: &Path, console: &Path) -> Vec<String> {
        let mem = cfg.memory_mib;
        let mut a: Vec<String> = vec![
            "-accel".into(),
            self.accel().into(),
            "-M".into(),
            // rtc=on: the guest reads the wall clock from the CMOS RTC
            // (without it, container timestamps start in 1970).
            "microvm,x-option-roms=off,rtc=on,acpi=off,auto-kernel-cmdline=on".into(),
            "-cpu".into(),
            if self.kvm.linux_capable {
                "host"
            } else {
                "max"
            }
            .into(),
            "-m".into(),
            format!("{mem}M"),
            "-smp".into(),
            cfg.vcpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            "-serial".into(),
            format!("file:{}", console.display()),
            "-kernel".into(),
            cfg.kernel.display().to_string(),
            "-initrd".into(),
            cfg.initrd.display().to_string(),
            "-append".into(),
            cfg.cmdline.clone(),
            // vhost-user needs guest memory the backend can map.
            "-object".into(),
            format!("memory-backend-memfd,id=mem,size={mem}M,share=on"),
            "-numa".into(),
            "node,memdev=mem".into(),
            "-chardev".into(),
            format!("socket,id=vu,path={}", vu_sock.display()),
            "-device".into(),
            "vhost-user-vsock-device,chardev=vu".into(),
            "-object".into(),
            "rng-random,id=rng,filename=/dev/urandom".into(),
            "-device".into(),
            "virtio-rng-device,rng=rng".into(),
        ];
        for (i, d) in cfg.disks.iter().enumerate() {
            a.push("-drive".into());
            a.push(format!(
                "file={},if=none,format=raw,id=disk{i}{}",
                d.path.display(),
                if d.read_only { ",readonly=on" } else { "" }
            ));
            a.push("-device".into());
            a.push(format!(
                "virtio-blk-device,drive=disk{i},serial={}",
                d.serial
            ));
        }
        a
    }
}

impl Hypervisor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn start(&self, cfg: &VmConfig) -> Result<VmRecord> {
        for d in &cfg.disks {
            if d.serial.len() > 20 || d.serial.contains(',') {
                bail!(
                    "disk serial {:?} must be at most 20 bytes without commas",
                    d.serial
                );
            }
        }
        let vu_sock = cfg.run_dir.join("vhost-user-vsock.sock");
        let uds = cfg.run_dir.join("vsock.sock");
        let console = cfg.run_dir.join("console.log");
        let mut record = VmRecord {
            hypervisor: self.name().into(),
            accel: self.accel().into(),
            vsock_uds: uds.clone(),
            console_log: console.clone(),
            run_dir: cfg.run_dir.clone(),
            processes: Vec::new(),
        };

        let mut vsock = Command::new(&self.vhost_vsock);
        vsock
            .arg("--guest-cid")
            .arg(GUEST_CID.to_string())
            .arg("--socket")
            .arg(&vu_sock)
            .arg("--uds-path")
            .arg(&uds);
        let vsock_log = cfg.run_dir.join("vhost-device-vsock.log");
        let vsock_proc = TrackedProcess::spawn("vhost-device-vsock", vsock, &vsock_log)?;
        record.processes.push(vsock_proc.clone());
        if let Err(e) = wait_for_socket(&vu_sock, &vsock_proc, Duration::from_secs(10)) {
            record.stop(Duration::ZERO);
            bail!("{e}\nvhost-device-vsock log:\n{}", tail(&vsock_log, 20));
        }

        let mut qemu = Command::new(&self.qemu);
        qemu.args(self.qemu_args(cfg, &vu_sock, &console));
        let qemu_log = cfg.run_dir.join("qemu.log");
        match TrackedProcess::spawn("qemu", qemu, &qemu_log) {
            Ok(p) => record.processes.push(p),
            Err(e) => {
                record.stop(Duration::ZERO);
                return Err(e.context(format!("qemu log:\n{}", tail(&qemu_log, 20))));
            }
        }
        Ok(record)
    }
}
