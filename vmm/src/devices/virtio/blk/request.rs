//! One virtio-blk request (virtio 1.2, 5.2.6): a 16-byte header in the
//! device-readable part of the chain, then data (readable for OUT,
//! writable for IN and GET_ID), then one status byte, the last writable
//! byte. Framing across descriptors is free, as the spec requires.
//!
//! A chain whose readable part is outside guest memory or too short for
//! the header gets IOERR; one with no writable byte (or writable memory
//! outside the guest) cannot take a status and is completed empty.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;

use virtio_queue::{DescriptorChain, Reader, Writer};
use vm_memory::{ByteValued, GuestMemoryMmap};

use super::{
    MAX_REQUEST_BYTES, SECTOR_SIZE, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
    VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
    VIRTIO_BLK_T_OUT,
};

/// Bytes copied between the file and guest memory at a time.
const CHUNK: usize = 64 * 1024;

/// `struct virtio_blk_outhdr`.
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
struct RequestHeader {
    request_type: u32,
    reserved: u32,
    sector: u64,
}

// SAFETY: plain integers with no padding; any bit pattern is valid.
unsafe impl ByteValued for RequestHeader {}

/// The backing file and what the guest may do with it.
pub(super) struct Disk {
    pub file: File,
    /// Size in sectors.
    pub capacity: u64,
    pub read_only: bool,
    /// The ID string, NUL-padded.
    pub id: [u8; VIRTIO_BLK_ID_BYTES],
}

impl Disk {
    /// The byte offset of `len` bytes at `sector`, if the range is whole
    /// sectors inside the disk and not too large.
    fn range(&self, sector: u64, len: usize) -> Option<u64> {
        if len % SECTOR_SIZE as usize != 0 || len > MAX_REQUEST_BYTES {
            return None;
        }
        let end = sector.checked_add(len as u64 / SECTOR_SIZE)?;
        (end <= self.capacity).then(|| sector * SECTOR_SIZE)
    }
}

/// Serves one chain; returns the number of bytes written into it.
pub(super) fn serve(
    disk: &Disk,
    chain: DescriptorChain<&GuestMemoryMmap>,
    mem: &GuestMemoryMmap,
) -> u32 {
    let reader = chain.clone().reader(mem);
    let mut data = match chain.writer(mem) {
        Ok(writer) if writer.available_bytes() > 0 => writer,
        _ => {
            log::warn!("virtio-blk: request without a writable status byte; dropped");
            return 0;
        }
    };
    let Ok(mut status) = data.split_at(data.available_bytes() - 1) else {
        return 0;
    };
    let (code, written) = match reader {
        Ok(mut reader) => execute(disk, &mut reader, &mut data),
        Err(e) => {
            log::warn!("virtio-blk: unreadable request ({e})");
            (VIRTIO_BLK_S_IOERR, 0)
        }
    };
    if status.write_all(&[code]).is_err() {
        return 0;
    }
    // At most MAX_REQUEST_BYTES + 1.
    (written + 1) as u32
}

/// Runs the request; returns the status and the data bytes written.
fn execute(disk: &Disk, reader: &mut Reader<'_>, data: &mut Writer<'_>) -> (u8, usize) {
    let Ok(header) = reader.read_obj::<RequestHeader>() else {
        log::warn!("virtio-blk: request header too short");
        return (VIRTIO_BLK_S_IOERR, 0);
    };
    match header.request_type {
        VIRTIO_BLK_T_IN => {
            let len = data.available_bytes();
            let Some(offset) = disk.range(header.sector, len) else {
                return (VIRTIO_BLK_S_IOERR, 0);
            };
            read_disk(&disk.file, offset, len, data)
        }
        VIRTIO_BLK_T_OUT => {
            let len = reader.available_bytes();
            if disk.read_only {
                return (VIRTIO_BLK_S_IOERR, 0);
            }
            let Some(offset) = disk.range(header.sector, len) else {
                return (VIRTIO_BLK_S_IOERR, 0);
            };
            (write_disk(&disk.file, offset, len, reader), 0)
        }
        VIRTIO_BLK_T_FLUSH if disk.read_only => (VIRTIO_BLK_S_OK, 0),
        VIRTIO_BLK_T_FLUSH => match disk.file.sync_all() {
            Ok(()) => (VIRTIO_BLK_S_OK, 0),
            Err(e) => {
                log::error!("virtio-blk: fsync failed: {e}");
                (VIRTIO_BLK_S_IOERR, 0)
            }
        },
        VIRTIO_BLK_T_GET_ID => {
            let n = data.available_bytes().min(VIRTIO_BLK_ID_BYTES);
            match data.write_all(&disk.id[..n]) {
                Ok(()) => (VIRTIO_BLK_S_OK, n),
                Err(_) => (VIRTIO_BLK_S_IOERR, 0),
            }
        }
        other => {
            log::debug!("virtio-blk: unsupported request type {other}");
            (VIRTIO_BLK_S_UNSUPP, 0)
        }
    }
}

/// Copies `len` bytes at `offset` of `file` into the guest.
fn read_disk(file: &File, offset: u64, len: usize, data: &mut Writer<'_>) -> (u8, usize) {
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        if let Err(e) = file.read_exact_at(&mut buf[..n], offset + done as u64) {
            log::error!("virtio-blk: read at {offset:#x} failed: {e}");
            return (VIRTIO_BLK_S_IOERR, done);
        }
        if data.write_all(&buf[..n]).is_err() {
            return (VIRTIO_BLK_S_IOERR, done);
        }
        done += n;
    }
    (VIRTIO_BLK_S_OK, done)
}

/// Copies `len` bytes from the guest to `offset` of `file`.
fn write_disk(file: &File, offset: u64, len: usize, reader: &mut Reader<'_>) -> u8 {
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        if reader.read_exact(&mut buf[..n]).is_err() {
            return VIRTIO_BLK_S_IOERR;
        }
        if let Err(e) = file.write_all_at(&buf[..n], offset + done as u64) {
            log::error!("virtio-blk: write at {offset:#x} failed: {e}");
            return VIRTIO_BLK_S_IOERR;
        }
        done += n;
    }
    VIRTIO_BLK_S_OK
}
