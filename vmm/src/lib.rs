//! podvm builtin VMM.
//!
//! Two parts: the KVM capability probe ([`probe_kvm`]), a tiny guest that
//! tells a KVM able to run a Linux guest (hardware virtualization) from one
//! that cannot (e.g. the `kvm_pvm` software nested hypervisor); and the VMM
//! itself, which boots a Linux kernel (or any 64-bit-boot-protocol image)
//! in a microVM: [`arch`] (layout and CPU state), [`boot`] (loading).

pub mod arch;
pub mod boot;
pub mod config;
pub mod devices;
pub mod error;
pub mod logger;
pub mod machine;
pub mod malloc;
pub mod probe;
pub mod seccomp;
pub mod stop;
pub mod vstate;

pub use config::VmConfig;
pub use error::{Error, Result};
pub use machine::Machine;
pub use probe::{probe_kvm, probe_kvm_with_deadline, KvmProbe};
pub use stop::StopReason;
