//! `podvm-vmm`: the builtin VMM's command line.
//!
//! - `probe` prints the KVM capability verdict as JSON.
//! - `run` boots one microVM and exits when the guest stops: status 0 when
//!   the guest asked to stop (reset, power-off, debug-exit 0), 3 when it
//!   asked to stop with a failure status on the debug-exit port, 2 when it
//!   crashed, 1 when the VMM itself failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use podvm_vmm::boot::BootProtocol;
use podvm_vmm::config::{DiskConfig, VsockConfig};
use podvm_vmm::devices::legacy::SerialOutput;
use podvm_vmm::probe::{probe_kvm_with_deadline, DEFAULT_KVM_DEVICE};
use podvm_vmm::{logger, malloc, Machine, VmConfig};

#[derive(Debug, Parser)]
#[command(name = "podvm-vmm", about = "podvm's builtin VMM")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check whether KVM can run a Linux guest (a ring-3 syscall must reach
    /// ring 0 in a tiny test guest) and print the verdict as JSON.
    Probe {
        /// The KVM device.
        #[arg(long, default_value = DEFAULT_KVM_DEVICE)]
        dev: PathBuf,
        /// How long the test guest may run, in milliseconds.
        #[arg(long, default_value_t = 2000)]
        deadline_ms: u64,
    },
    /// Boot a microVM and run it until the guest stops.
    Run(RunArgs),
}

/// `run` flags; each one given overrides the same field of `--config`.
#[derive(Debug, Args)]
struct RunArgs {
    /// JSON configuration file (fields as the flags, in snake_case).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Kernel image: vmlinux ELF or bzImage.
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Initrd / initramfs image.
    #[arg(long)]
    initrd: Option<PathBuf>,
    /// Kernel command line.
    #[arg(long)]
    cmdline: Option<String>,
    /// Guest memory in MiB.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// Number of vCPUs.
    #[arg(long)]
    vcpus: Option<u8>,
    /// Serial console: `stdout`, `off` or `file:PATH`.
    #[arg(long)]
    serial: Option<SerialOutput>,
    /// Give the guest a virtio-rng device.
    #[arg(long)]
    rng: bool,
    /// A virtio-blk disk, `path=P[,ro=true|false][,serial=S]`; repeatable,
    /// added after those of `--config`.
    #[arg(long = "disk")]
    disks: Vec<DiskConfig>,
    /// The virtio-vsock device, `uds=PATH[,cid=N]` (CID 3 by default).
    #[arg(long)]
    vsock: Option<VsockConfig>,
    /// The KVM device.
    #[arg(long, default_value = DEFAULT_KVM_DEVICE)]
    dev: PathBuf,
    /// Per-thread seccomp filters, `on` (the default) or `off`; overrides
    /// the `seccomp` field (true/false) of `--config`.
    #[arg(long, value_parser = parse_on_off)]
    seccomp: Option<bool>,
    /// Log level on stderr: off, error, warn, info, debug, trace.
    #[arg(long, default_value = "warn", value_parser = parse_level)]
    log_level: log::LevelFilter,
}

impl RunArgs {
    /// The configuration: the file's, then the flags on top.
    fn config(&self) -> anyhow::Result<VmConfig> {
        let mut config = match (&self.config, &self.kernel) {
            (Some(path), _) => VmConfig::from_json_file(path)?,
            (None, Some(kernel)) => VmConfig::new(kernel.clone()),
            (None, None) => anyhow::bail!("either --kernel or --config is required"),
        };
        if let Some(kernel) = &self.kernel {
            config.kernel = kernel.clone();
        }
        if let Some(initrd) = &self.initrd {
            config.initrd = Some(initrd.clone());
        }
        if let Some(cmdline) = &self.cmdline {
            config.cmdline = cmdline.clone();
        }
        if let Some(memory_mib) = self.memory_mib {
            config.memory_mib = memory_mib;
        }
        if let Some(vcpus) = self.vcpus {
            config.vcpus = vcpus;
        }
        if let Some(serial) = &self.serial {
            config.serial = serial.clone();
        }
        config.rng |= self.rng;
        config.disks.extend(self.disks.iter().cloned());
        if let Some(vsock) = &self.vsock {
            config.vsock = Some(vsock.clone());
        }
        if let Some(seccomp) = self.seccomp {
            config.seccomp = seccomp;
        }
        config.validate()?;
        Ok(config)
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?} is not on or off")),
    }
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not off, error, warn, info, debug or trace"))
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    // Before any thread exists: malloc and free within the seccomp filters.
    let confined = malloc::confine_allocator();
    logger::init(args.log_level);
    if !confined {
        log::warn!("glibc refused the malloc settings the seccomp filters rely on");
    }
    let config = args.config()?;
    log::info!("building VM: {config:?}");
    let machine = Machine::build_on(&config, &args.dev).context("building the VM")?;
    let setup = machine.boot_setup();
    let entry = match setup.protocol {
        BootProtocol::Linux64 { entry } | BootProtocol::Pvh { entry } => entry,
    };
    log::info!(
        "kernel {:?} entered at {entry:#x} ({}), initrd {:x?}, cmdline {:?}",
        setup.kernel.format,
        setup.protocol.name(),
        setup.initrd,
        machine.cmdline()
    );
    let reason = machine.run().context("running the VM")?;
    if !reason.guest_requested() {
        eprintln!("podvm-vmm: {reason}");
    }
    Ok(ExitCode::from(reason.exit_code() as u8))
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Probe { dev, deadline_ms } => {
            let probe = probe_kvm_with_deadline(&dev, Duration::from_millis(deadline_ms))
                .with_context(|| format!("probing {}", dev.display()))?;
            println!("{}", serde_json::to_string_pretty(&probe)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(&args),
    }
}
