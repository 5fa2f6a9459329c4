//! Whether this host's KVM can run a Linux guest. Decided by a real probe
//! (a tiny guest whose ring-3 `syscall` must land in ring 0; see
//! `podvm_vmm::probe`), in this process. Nothing is cached: every call
//! runs the probe afresh, so each `podvm apply` (choosing its hypervisor)
//! and each `podvm host-check` probes once.

use std::path::Path;

/// The outcome of the KVM check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvmVerdict {
    pub linux_capable: bool,
    pub detail: String,
}

/// Probes `/dev/kvm` (or `PODVM_KVM_DEVICE`), afresh on every call.
pub fn host_kvm_verdict() -> KvmVerdict {
    let dev = std::env::var_os("PODVM_KVM_DEVICE").unwrap_or_else(|| "/dev/kvm".into());
    let dev = Path::new(&dev);
    if !dev.exists() {
        return KvmVerdict {
            linux_capable: false,
            detail: format!("{} does not exist", dev.display()),
        };
    }
    match podvm_vmm::probe_kvm(dev) {
        Ok(p) => KvmVerdict {
            linux_capable: p.linux_capable,
            detail: p.detail,
        },
        Err(e) => KvmVerdict {
            linux_capable: false,
            detail: format!("KVM probe failed: {e}"),
        },
    }
}
