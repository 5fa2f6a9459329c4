//! The vCPU thread filter: `KVM_RUN`, `KVM_GET_REGS` (to name the rip of a
//! crash) and no other ioctl but `FIONBIO`; the device I/O its exits may
//! lead to.

use vmm_sys_util::{ioctl_io_nr, ioctl_ior_nr};

use super::{allow_arg_in, common_rules, device_io_rules, Rules};

const KVMIO: u32 = 0xAE;
ioctl_io_nr!(KVM_RUN, KVMIO, 0x80);
ioctl_ior_nr!(KVM_GET_REGS, KVMIO, 0x81, kvm_bindings::kvm_regs);

/// The vCPU ioctls allowed (request numbers).
pub fn kvm_ioctls() -> [u64; 2] {
    [KVM_RUN(), KVM_GET_REGS()]
}

/// The vCPU thread's allow-list.
pub(crate) fn rules() -> Rules {
    let mut rules = common_rules();
    device_io_rules(&mut rules);
    allow_arg_in(&mut rules, libc::SYS_ioctl, 1, &kvm_ioctls());
    rules
}
