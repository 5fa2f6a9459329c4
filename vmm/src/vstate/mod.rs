//! KVM state: the VM (memory, irqchip, PIT) and its vCPUs.

pub mod vcpu;
pub mod vm;

pub use vcpu::Vcpu;
pub use vm::Vm;

/// Errors of KVM VM and vCPU setup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A KVM ioctl failed.
    #[error("{0} failed: {1}")]
    Kvm(&'static str, #[source] vmm_sys_util::errno::Error),
    /// Guest memory could not be allocated.
    #[error("cannot allocate guest memory: {0}")]
    GuestMemory(#[source] vm_memory::mmap::FromRangesError),
    /// Guest memory could not be addressed.
    #[error("cannot address guest memory: {0}")]
    GuestMemoryAccess(#[source] vm_memory::GuestMemoryError),
    /// KVM accepted fewer MSRs than given.
    #[error("KVM_SET_MSRS took {written} of {total} MSRs")]
    Msrs {
        /// How many KVM took.
        written: usize,
        /// How many were given.
        total: usize,
    },
    /// A vCPU thread could not be started.
    #[error("cannot spawn a vCPU thread: {0}")]
    SpawnThread(#[source] std::io::Error),
    /// The vCPU kick signal could not be installed.
    #[error(transparent)]
    Kick(#[from] crate::error::Error),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;
