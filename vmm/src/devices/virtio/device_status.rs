//! Human-readable virtio device status: names for device types and status
//! bits, and the log lines the virtio-mmio transport writes when a driver
//! finishes (DRIVER_OK) or gives up on (FAILED) a device. Tests and
//! operators read these lines to see how far a guest's drivers got.

use super::mmio::status;
use super::{VIRTIO_ID_BLOCK, VIRTIO_ID_RNG, VIRTIO_ID_VSOCK};

/// The name of virtio device type `id` as used in logs (`virtio-blk`, ...).
pub fn device_type_name(id: u32) -> &'static str {
    match id {
        VIRTIO_ID_BLOCK => "virtio-blk",
        VIRTIO_ID_RNG => "virtio-rng",
        VIRTIO_ID_VSOCK => "virtio-vsock",
        _ => "virtio-unknown",
    }
}

/// The set bits of a device status register, by name, `|`-separated, in
/// the order a driver sets them; unknown bits in hex; `0` as `RESET`.
pub fn status_names(value: u32) -> String {
    const BITS: [(u32, &str); 6] = [
        (status::ACKNOWLEDGE, "ACKNOWLEDGE"),
        (status::DRIVER, "DRIVER"),
        (status::FEATURES_OK, "FEATURES_OK"),
        (status::DRIVER_OK, "DRIVER_OK"),
        (status::DEVICE_NEEDS_RESET, "DEVICE_NEEDS_RESET"),
        (status::FAILED, "FAILED"),
    ];
    if value == 0 {
        return "RESET".to_owned();
    }
    let mut names: Vec<String> = BITS
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let known = BITS.iter().fold(0, |acc, (bit, _)| acc | bit);
    if value & !known != 0 {
        names.push(format!("{:#x}", value & !known));
    }
    names.join("|")
}

/// The line logged (info) when the driver of device type `id` in the
/// window at `base` sets DRIVER_OK with `features` negotiated, e.g.
/// `virtio-mmio: virtio-blk at 0xd0001000: driver status DRIVER_OK, features 0x100000220 (ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK)`.
pub fn driver_ok_message(id: u32, base: u64, features: u64, status: u32) -> String {
    format!(
        "virtio-mmio: {} at {base:#x}: driver status DRIVER_OK, features {features:#x} ({})",
        device_type_name(id),
        status_names(status)
    )
}

/// The line logged (warn) when the driver sets FAILED: it gave up.
pub fn driver_failed_message(id: u32, base: u64, status: u32) -> String {
    format!(
        "virtio-mmio: {} at {base:#x}: driver status FAILED ({})",
        device_type_name(id),
        status_names(status)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_types_have_names() {
        assert_eq!(device_type_name(VIRTIO_ID_BLOCK), "virtio-blk");
        assert_eq!(device_type_name(VIRTIO_ID_RNG), "virtio-rng");
        assert_eq!(device_type_name(VIRTIO_ID_VSOCK), "virtio-vsock");
        assert_eq!(device_type_name(1), "virtio-unknown");
    }

    #[test]
    fn status_bits_are_named_in_handshake_order() {
        assert_eq!(status_names(0), "RESET");
        assert_eq!(
            status_names(0xf),
            "ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK"
        );
        assert_eq!(status_names(0x83), "ACKNOWLEDGE|DRIVER|FAILED");
        assert_eq!(
            status_names(0x4c),
            "FEATURES_OK|DRIVER_OK|DEVICE_NEEDS_RESET"
        );
        assert_eq!(status_names(0x31), "ACKNOWLEDGE|0x30");
    }

    #[test]
    fn messages_name_device_window_features_and_status() {
        assert_eq!(
            driver_ok_message(VIRTIO_ID_BLOCK, 0xd000_1000, 0x1_0000_0220, 0xf),
            "virtio-mmio: virtio-blk at 0xd0001000: driver status DRIVER_OK, \
             features 0x100000220 (ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK)"
        );
        assert_eq!(
            driver_failed_message(VIRTIO_ID_VSOCK, 0xd000_2000, 0x83),
            "virtio-mmio: virtio-vsock at 0xd0002000: driver status FAILED \
             (ACKNOWLEDGE|DRIVER|FAILED)"
        );
    }
}
