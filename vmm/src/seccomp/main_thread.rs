//! The main thread filter, installed once every vCPU and the device loop
//! run: waiting on the stop channel, kicking vCPU threads out of `KVM_RUN`
//! (`tgkill`), joining them, stopping the device loop (an eventfd write),
//! unmapping guest memory, closing fds, removing the vsock socket file
//! (`unlink`: the device loop hands its devices back to be dropped here)
//! and exiting. No ioctl, no file or socket is opened.

use super::{allow, common_rules, Rules};

/// The main thread's allow-list.
pub(crate) fn rules() -> Rules {
    let mut rules = common_rules();
    allow(&mut rules, &[libc::SYS_tgkill, libc::SYS_unlink]);
    rules
}
