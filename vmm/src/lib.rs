//! podvm builtin VMM.
//!
//! For now this crate holds the KVM capability probe ([`probe_kvm`]): a tiny
//! guest that tells a KVM able to run a Linux guest (hardware virtualization)
//! from one that cannot (e.g. the `kvm_pvm` software nested hypervisor).

pub mod error;
pub mod probe;

pub use error::{Error, Result};
pub use probe::{probe_kvm, probe_kvm_with_deadline, KvmProbe};
