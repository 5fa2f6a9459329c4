//! virtio-blk: a disk backed by a host file, read-only or read-write.
//! Requests IN, OUT, FLUSH and GET_ID (the disk serial, which the guest
//! agent reads from `/sys/block/vdX/serial` to find image disks); the
//! rest are answered UNSUPP. Capacity is in configuration space.
//!
//! Constants mirror include/uapi/linux/virtio_blk.h.

mod device;
mod request;

pub use device::Block;

/// `SECTOR_SIZE`: virtio-blk addresses the disk in 512-byte sectors.
pub const SECTOR_SIZE: u64 = 512;
/// `VIRTIO_BLK_F_SEG_MAX`: `seg_max` in config space is valid.
pub const VIRTIO_BLK_F_SEG_MAX: u32 = 2;
/// `VIRTIO_BLK_F_RO`: the disk is read-only.
pub const VIRTIO_BLK_F_RO: u32 = 5;
/// `VIRTIO_BLK_F_FLUSH`: FLUSH requests are supported.
pub const VIRTIO_BLK_F_FLUSH: u32 = 9;
/// `VIRTIO_BLK_T_IN`: read sectors.
pub const VIRTIO_BLK_T_IN: u32 = 0;
/// `VIRTIO_BLK_T_OUT`: write sectors.
pub const VIRTIO_BLK_T_OUT: u32 = 1;
/// `VIRTIO_BLK_T_FLUSH`: make earlier writes durable.
pub const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// `VIRTIO_BLK_T_GET_ID`: read the device ID string (serial).
pub const VIRTIO_BLK_T_GET_ID: u32 = 8;
/// `VIRTIO_BLK_S_OK`.
pub const VIRTIO_BLK_S_OK: u8 = 0;
/// `VIRTIO_BLK_S_IOERR`.
pub const VIRTIO_BLK_S_IOERR: u8 = 1;
/// `VIRTIO_BLK_S_UNSUPP`.
pub const VIRTIO_BLK_S_UNSUPP: u8 = 2;
/// `VIRTIO_BLK_ID_BYTES`: length of the ID string.
pub const VIRTIO_BLK_ID_BYTES: usize = 20;

/// The only queue: requests.
pub const REQUEST_QUEUE: usize = 0;
/// Its size.
pub const QUEUE_SIZE: u16 = 256;
/// Most data bytes in one request: bounds the host work per request (Linux
/// sends at most `max_sectors_kb`, 1280 KiB by default).
pub const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Errors setting up a disk.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backing file could not be opened or measured.
    #[error("disk {path}: {source}")]
    Open {
        /// The backing file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The serial is too long or has characters other than printable ASCII.
    #[error("disk serial {0:?} must be at most 20 printable ASCII characters")]
    Serial(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks a disk serial: at most [`VIRTIO_BLK_ID_BYTES`] printable ASCII
/// characters, no spaces or commas (it travels in `--disk` and in sysfs).
pub fn validate_serial(serial: &str) -> Result<()> {
    let ok = serial.len() <= VIRTIO_BLK_ID_BYTES
        && serial.bytes().all(|b| b.is_ascii_graphic() && b != b',');
    if ok {
        Ok(())
    } else {
        Err(Error::Serial(serial.into()))
    }
}
