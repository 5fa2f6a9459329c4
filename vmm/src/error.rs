//! Errors of the podvm VMM crate.

use std::path::PathBuf;

/// Errors that stop the VMM (or the KVM probe) from using KVM at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The KVM device could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    OpenKvm {
        /// The device path, usually `/dev/kvm`.
        path: PathBuf,
        /// The open(2) error.
        source: vmm_sys_util::errno::Error,
    },
    /// `KVM_GET_API_VERSION` returned something other than the stable 12.
    #[error("KVM API version {0} is not the stable version 12")]
    ApiVersion(i32),
    /// `KVM_CREATE_VM` failed.
    #[error("KVM_CREATE_VM failed: {0}")]
    CreateVm(#[source] vmm_sys_util::errno::Error),
    /// Guest memory could not be allocated.
    #[error("cannot allocate guest memory: {0}")]
    GuestMemory(#[source] vm_memory::mmap::FromRangesError),
    /// Guest memory could not be written or addressed.
    #[error("cannot access guest memory: {0}")]
    GuestMemoryAccess(#[source] vm_memory::GuestMemoryError),
    /// `KVM_SET_USER_MEMORY_REGION` failed.
    #[error("KVM_SET_USER_MEMORY_REGION failed: {0}")]
    SetMemoryRegion(#[source] vmm_sys_util::errno::Error),
    /// `KVM_CREATE_VCPU` failed.
    #[error("KVM_CREATE_VCPU failed: {0}")]
    CreateVcpu(#[source] vmm_sys_util::errno::Error),
    /// The signal used to kick a vCPU out of `KVM_RUN` could not be set up.
    #[error("cannot install the vCPU kick signal handler: {0}")]
    KickSignal(#[source] vmm_sys_util::errno::Error),
    /// The vCPU thread could not be started.
    #[error("cannot spawn the vCPU thread: {0}")]
    SpawnVcpuThread(#[source] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;
