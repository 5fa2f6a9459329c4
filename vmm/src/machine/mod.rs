//! A whole microVM: built from a [`VmConfig`] phase by phase
//! ([`Machine::build`]), then run until the guest stops or crashes
//! ([`Machine::run`]).

mod builder;
mod runner;

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use kvm_ioctls::Kvm;

use crate::boot::BootSetup;
use crate::devices::virtio::event_loop::EventLoop;
use crate::seccomp::Filters;
use crate::stop::StopReason;
use crate::vstate::{Vcpu, Vm};

/// Errors while building or running a VM; one variant per phase.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    /// `/dev/kvm` is unusable.
    #[error(transparent)]
    Kvm(#[from] crate::error::Error),
    /// Creating the VM, its memory or its vCPUs failed.
    #[error(transparent)]
    Vstate(#[from] crate::vstate::Error),
    /// A device could not be set up.
    #[error("device {0}: {1}")]
    Device(&'static str, String),
    /// The kernel command line is invalid or too long.
    #[error("kernel command line: {0}")]
    Cmdline(#[from] linux_loader::cmdline::Error),
    /// Loading the kernel, initrd or boot structures failed.
    #[error(transparent)]
    Boot(#[from] crate::boot::Error),
    /// A seccomp filter could not be built or installed.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::Error),
    /// Every vCPU thread ended without reporting why.
    #[error("all vCPU threads ended without a stop reason")]
    NoStopReason,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// A built VM, ready to run.
pub struct Machine {
    /// The VM; shared with vCPU threads, so a thread that will not stop
    /// keeps the memory it runs on alive.
    vm: Arc<Vm>,
    /// The vCPUs, boot vCPU first.
    vcpus: Vec<Vcpu>,
    /// Where devices and vCPUs report a stop.
    stop_rx: Receiver<StopReason>,
    /// What was loaded where.
    boot: BootSetup,
    /// The final kernel command line.
    cmdline: String,
    /// Serves queue notifications and device backends while the VM runs.
    event_loop: EventLoop,
    /// The compiled per-thread seccomp filters; `None` runs unfiltered.
    seccomp: Option<Filters>,
    /// The KVM handle (kept open for the VM's life).
    _kvm: Kvm,
}

impl Machine {
    /// What was loaded where.
    pub fn boot_setup(&self) -> &BootSetup {
        &self.boot
    }

    /// The kernel command line the guest gets.
    pub fn cmdline(&self) -> &str {
        &self.cmdline
    }
}
