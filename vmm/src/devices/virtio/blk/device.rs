//! The virtio-blk device model: feature bits, configuration space and the
//! request queue; requests themselves are in `request.rs`.

use std::fs::OpenOptions;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::request::{serve, Disk};
use super::{
    validate_serial, Error, Result, QUEUE_SIZE, SECTOR_SIZE, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO,
    VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_ID_BYTES,
};
use crate::config::DiskConfig;
use crate::devices::virtio::{self, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_ID_BLOCK};

/// Bytes of `struct virtio_blk_config` served: capacity, size_max, seg_max.
const CONFIG_LEN: usize = 16;

/// A block device backed by a file.
pub struct Block {
    disk: Disk,
    config: [u8; CONFIG_LEN],
    queue_sizes: [u16; 1],
}

impl Block {
    /// Opens the backing file (read-only or read-write as configured).
    pub fn new(config: &DiskConfig) -> Result<Self> {
        let open_err = |source| Error::Open {
            path: config.path.clone(),
            source,
        };
        let serial = config.serial.as_deref().unwrap_or("");
        validate_serial(serial)?;
        let file = OpenOptions::new()
            .read(true)
            .write(!config.ro)
            .open(&config.path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len % SECTOR_SIZE != 0 {
            log::warn!(
                "disk {}: size {len} is not whole sectors; the tail is not visible",
                config.path.display()
            );
        }
        let capacity = len / SECTOR_SIZE;
        let mut id = [0u8; VIRTIO_BLK_ID_BYTES];
        id[..serial.len()].copy_from_slice(serial.as_bytes());
        let mut space = [0u8; CONFIG_LEN];
        space[..8].copy_from_slice(&capacity.to_le_bytes());
        // seg_max: a chain also holds the header and the status.
        space[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes());
        Ok(Self {
            disk: Disk {
                file,
                capacity,
                read_only: config.ro,
                id,
            },
            config: space,
            queue_sizes: [QUEUE_SIZE],
        })
    }

    /// Disk size in sectors.
    pub fn capacity(&self) -> u64 {
        self.disk.capacity
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn avail_features(&self) -> u64 {
        let mut features =
            1 << VIRTIO_F_VERSION_1 | 1 << VIRTIO_BLK_F_FLUSH | 1 << VIRTIO_BLK_F_SEG_MAX;
        if self.disk.read_only {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        virtio::read_config_bytes(&self.config, offset, data);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
    ) -> virtio::Result<bool> {
        let Some(queue) = queues.get_mut(index) else {
            return Ok(false);
        };
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let written = serve(&self.disk, chain, mem);
            queue
                .add_used(mem, head, written)
                .map_err(|e| virtio::Error::UsedRing(e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::blk::{
        VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH,
        VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
    };
    use crate::devices::virtio::test_driver::{TestDriver, DATA, F_NEXT, F_WRITE, MEM_SIZE};
    use std::io::Write;
    use vm_memory::{Bytes, GuestAddress};

    const HDR: u64 = DATA;
    const BUF: u64 = DATA + 0x1000;
    const STATUS: u64 = DATA + 0x100;

    /// A 16-sector disk whose sector n is filled with byte n.
    fn disk(ro: bool, serial: Option<&str>) -> (tempfile::NamedTempFile, Block) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        for n in 0..16u8 {
            file.write_all(&[n; 512]).unwrap();
        }
        let config = DiskConfig {
            path: file.path().to_path_buf(),
            ro,
            serial: serial.map(Into::into),
        };
        let block = Block::new(&config).unwrap();
        (file, block)
    }

    fn header(driver: &TestDriver, request_type: u32, sector: u64) {
        driver
            .mem
            .write_obj(request_type, GuestAddress(HDR))
            .unwrap();
        driver.mem.write_obj(0u32, GuestAddress(HDR + 4)).unwrap();
        driver.mem.write_obj(sector, GuestAddress(HDR + 8)).unwrap();
        driver.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    }

    /// header, one data descriptor with `data_flags`, status.
    fn request(driver: &mut TestDriver, data_len: u32, data_flags: u16) {
        driver.add_chain(
            0,
            &[
                (HDR, 16, F_NEXT, 1),
                (BUF, data_len, data_flags | F_NEXT, 2),
                (STATUS, 1, F_WRITE, 0),
            ],
        );
    }

    fn run(block: &mut Block, driver: &TestDriver, queue: &mut Queue) -> bool {
        block
            .process_queue(0, std::slice::from_mut(queue), &driver.mem)
            .unwrap()
    }

    fn status(driver: &TestDriver) -> u8 {
        driver.mem.read_obj(GuestAddress(STATUS)).unwrap()
    }

    #[test]
    fn features_and_capacity_in_config_space() {
        let (_file, rw) = disk(false, None);
        let (_file2, ro) = disk(true, None);
        assert_eq!(rw.capacity(), 16);
        assert_eq!(rw.avail_features() & (1 << VIRTIO_BLK_F_RO), 0);
        assert_ne!(ro.avail_features() & (1 << VIRTIO_BLK_F_RO), 0);
        assert_ne!(rw.avail_features() & (1 << VIRTIO_BLK_F_FLUSH), 0);
        let mut capacity = [0u8; 8];
        rw.read_config(0, &mut capacity);
        assert_eq!(u64::from_le_bytes(capacity), 16);
        let mut high = [0xffu8; 4];
        rw.read_config(4, &mut high);
        assert_eq!(high, [0; 4]);
        let mut seg_max = [0u8; 4];
        rw.read_config(12, &mut seg_max);
        assert_eq!(u32::from_le_bytes(seg_max), 254);
        rw.read_config(u64::MAX, &mut seg_max);
        assert_eq!(seg_max, [0; 4], "past the end reads zero");
    }

    #[test]
    fn reads_and_writes_sectors() {
        let (file, mut block) = disk(false, None);
        let mut driver = TestDriver::new(8);
        let mut queue = driver.queue(QUEUE_SIZE);
        header(&driver, VIRTIO_BLK_T_IN, 3);
        request(&mut driver, 1024, F_WRITE);
        assert!(run(&mut block, &driver, &mut queue));
        assert_eq!(status(&driver), VIRTIO_BLK_S_OK);
        assert_eq!(driver.used(0), (0, 1025));
        let mut data = [0u8; 1024];
        driver.mem.read_slice(&mut data, GuestAddress(BUF)).unwrap();
        assert!(data[..512].iter().all(|b| *b == 3));
        assert!(data[512..].iter().all(|b| *b == 4));

        driver
            .mem
            .write_slice(&[0xab; 512], GuestAddress(BUF))
            .unwrap();
        header(&driver, VIRTIO_BLK_T_OUT, 15);
        request(&mut driver, 512, 0);
        assert!(run(&mut block, &driver, &mut queue));
        assert_eq!(status(&driver), VIRTIO_BLK_S_OK);
        assert_eq!(driver.used(1), (0, 1));
        header(&driver, VIRTIO_BLK_T_FLUSH, 0);
        driver.add_chain(0, &[(HDR, 16, F_NEXT, 1), (STATUS, 1, F_WRITE, 0)]);
        assert!(run(&mut block, &driver, &mut queue));
        assert_eq!(status(&driver), VIRTIO_BLK_S_OK);
        let content = std::fs::read(file.path()).unwrap();
        assert!(content[15 * 512..].iter().all(|b| *b == 0xab));
        assert!(content[14 * 512..15 * 512].iter().all(|b| *b == 14));
    }

    #[test]
    fn framing_across_descriptors_is_free() {
        let (_file, mut block) = disk(false, None);
        let mut driver = TestDriver::new(8);
        let mut queue = driver.queue(QUEUE_SIZE);
        header(&driver, VIRTIO_BLK_T_IN, 1);
        // Header split 10 + 6; data and status in one writable descriptor.
        driver.add_chain(
            0,
            &[
                (HDR, 10, F_NEXT, 1),
                (HDR + 10, 6, F_NEXT, 2),
                (BUF, 513, F_WRITE, 0),
            ],
        );
        assert!(run(&mut block, &driver, &mut queue));
        assert_eq!(driver.used(0), (0, 513));
        let mut out = [0u8; 513];
        driver.mem.read_slice(&mut out, GuestAddress(BUF)).unwrap();
        assert!(out[..512].iter().all(|b| *b == 1));
        assert_eq!(out[512], VIRTIO_BLK_S_OK);
    }

    #[test]
    fn read_only_disks_refuse_writes_but_flush() {
        let (file, mut block) = disk(true, None);
        let mut driver = TestDriver::new(8);
        let mut queue = driver.queue(QUEUE_SIZE);
        header(&driver, VIRTIO_BLK_T_OUT, 0);
        request(&mut driver, 512, 0);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_IOERR);
        assert!(std::fs::read(file.path()).unwrap()[..512]
            .iter()
            .all(|b| *b == 0));
        header(&driver, VIRTIO_BLK_T_FLUSH, 0);
        driver.add_chain(0, &[(HDR, 16, F_NEXT, 1), (STATUS, 1, F_WRITE, 0)]);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_OK);
    }

    #[test]
    fn get_id_returns_the_serial_and_unknown_types_are_unsupported() {
        let (_file, mut block) = disk(true, Some("podvm-img-0123456789"));
        let mut driver = TestDriver::new(8);
        let mut queue = driver.queue(QUEUE_SIZE);
        header(&driver, VIRTIO_BLK_T_GET_ID, 0);
        request(&mut driver, 20, F_WRITE);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_OK);
        assert_eq!(driver.used(0), (0, 21));
        let mut id = [0u8; 20];
        driver.mem.read_slice(&mut id, GuestAddress(BUF)).unwrap();
        assert_eq!(&id, b"podvm-img-0123456789");
        header(&driver, 11, 0); // VIRTIO_BLK_T_DISCARD: not offered.
        request(&mut driver, 16, 0);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_UNSUPP);
        let too_long = DiskConfig {
            path: "/dev/null".into(),
            ro: true,
            serial: Some("x".repeat(21)),
        };
        assert!(matches!(Block::new(&too_long), Err(Error::Serial(_))));
    }

    #[test]
    fn out_of_range_and_partial_sectors_are_io_errors() {
        let (_file, mut block) = disk(false, None);
        let mut driver = TestDriver::new(16);
        let mut queue = driver.queue(QUEUE_SIZE);
        for (sector, len) in [(15, 1024), (16, 512), (u64::MAX, 512), (0, 100)] {
            header(&driver, VIRTIO_BLK_T_IN, sector);
            request(&mut driver, len, F_WRITE);
            run(&mut block, &driver, &mut queue);
            assert_eq!(
                status(&driver),
                VIRTIO_BLK_S_IOERR,
                "sector {sector} len {len}"
            );
            header(&driver, VIRTIO_BLK_T_OUT, sector);
            request(&mut driver, len, 0);
            run(&mut block, &driver, &mut queue);
            assert_eq!(
                status(&driver),
                VIRTIO_BLK_S_IOERR,
                "sector {sector} len {len}"
            );
        }
    }

    #[test]
    fn hostile_chains_get_io_errors_or_are_dropped() {
        let (_file, mut block) = disk(false, None);
        let mut driver = TestDriver::new(16);
        let mut queue = driver.queue(QUEUE_SIZE);
        // Header in a writable descriptor: nothing readable -> IOERR.
        header(&driver, VIRTIO_BLK_T_IN, 0);
        driver.add_chain(
            0,
            &[(HDR, 16, F_WRITE | F_NEXT, 1), (STATUS, 1, F_WRITE, 0)],
        );
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_IOERR);
        // Header too short.
        header(&driver, VIRTIO_BLK_T_IN, 0);
        driver.add_chain(0, &[(HDR, 8, F_NEXT, 1), (STATUS, 1, F_WRITE, 0)]);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_IOERR);
        // Status in a readable descriptor: no status can be given.
        header(&driver, VIRTIO_BLK_T_IN, 0);
        driver.add_chain(0, &[(HDR, 16, F_NEXT, 1), (STATUS, 1, 0, 0)]);
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), 0xff);
        assert_eq!(driver.used(2), (0, 0));
        // Data outside memory (readable and writable).
        header(&driver, VIRTIO_BLK_T_OUT, 0);
        request(&mut driver, 0, 0);
        driver.set_desc(1, (MEM_SIZE as u64 - 256, 512, F_NEXT, 2));
        run(&mut block, &driver, &mut queue);
        assert_eq!(status(&driver), VIRTIO_BLK_S_IOERR);
        header(&driver, VIRTIO_BLK_T_IN, 0);
        driver.add_chain(
            0,
            &[
                (HDR, 16, F_NEXT, 1),
                (u64::MAX - 100, 512, F_WRITE | F_NEXT, 2),
                (STATUS, 1, F_WRITE, 0),
            ],
        );
        run(&mut block, &driver, &mut queue);
        assert_eq!(driver.used(4), (0, 0), "unwritable: dropped");
        // A looped chain: bounded by the queue size, then answered.
        header(&driver, VIRTIO_BLK_T_GET_ID, 0);
        driver.set_desc(5, (HDR, 16, F_NEXT, 6));
        driver.set_desc(6, (STATUS, 1, F_WRITE | F_NEXT, 5));
        driver.make_available(5);
        run(&mut block, &driver, &mut queue);
        assert_eq!(driver.used_idx(), 6);
        // A 4 GiB data descriptor.
        header(&driver, VIRTIO_BLK_T_IN, 0);
        request(&mut driver, u32::MAX, F_WRITE);
        run(&mut block, &driver, &mut queue);
        assert_eq!(driver.used_idx(), 7);
        assert_eq!(driver.used(6), (0, 0), "outside memory: dropped");
    }
}
