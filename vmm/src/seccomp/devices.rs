//! The device event-loop thread filter (the thread running the
//! `event_manager::EventManager`): epoll, eventfds (read and write),
//! disk I/O, the vsock Unix sockets and `getrandom`; the only ioctl is
//! `FIONBIO`.

use super::{common_rules, device_io_rules, Rules};

/// The device thread's allow-list.
pub(crate) fn rules() -> Rules {
    let mut rules = common_rules();
    device_io_rules(&mut rules);
    rules
}
