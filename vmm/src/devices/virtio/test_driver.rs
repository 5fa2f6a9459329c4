//! A test-only virtio driver: writes split-virtqueue descriptor tables and
//! rings into guest memory the way a guest driver would, including chains
//! a hostile guest would build, and reads back the used ring.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// `VRING_DESC_F_NEXT` (include/uapi/linux/virtio_ring.h).
pub const F_NEXT: u16 = 1;
/// `VRING_DESC_F_WRITE`.
pub const F_WRITE: u16 = 2;

/// Guest memory size used by device tests.
pub const MEM_SIZE: usize = 1 << 20;
/// Where the test driver puts the descriptor table.
pub const DESC_TABLE: u64 = 0x1000;
/// Where the test driver puts the available ring.
pub const AVAIL_RING: u64 = 0x2000;
/// Where the test driver puts the used ring.
pub const USED_RING: u64 = 0x3000;
/// Start of the data buffers the tests use.
pub const DATA: u64 = 0x1_0000;

/// One descriptor: address, length, flags, next.
pub type Desc = (u64, u32, u16, u16);

/// A driver for one split virtqueue of `size` entries.
pub struct TestDriver {
    /// Guest memory.
    pub mem: GuestMemoryMmap,
    /// Queue size.
    pub size: u16,
    /// Added to [`DESC_TABLE`], [`AVAIL_RING`] and [`USED_RING`], so that
    /// several drivers (queues) can share one memory.
    pub base: u64,
    avail_idx: u16,
}

impl TestDriver {
    /// Fresh memory and an empty queue.
    pub fn new(size: u16) -> Self {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .expect("test guest memory");
        Self::on(mem, size, 0)
    }

    /// A queue whose rings sit `base` bytes above the default addresses of
    /// `mem` (use multiples of 0x4000 below [`DATA`]).
    pub fn on(mem: GuestMemoryMmap, size: u16, base: u64) -> Self {
        Self {
            mem,
            size,
            base,
            avail_idx: 0,
        }
    }

    /// A device-side queue pointing at this driver's rings, ready.
    pub fn queue(&self, max_size: u16) -> Queue {
        let mut queue = Queue::new(max_size).expect("queue");
        queue.set_size(self.size);
        queue.set_desc_table_address(Some((self.base + DESC_TABLE) as u32), Some(0));
        queue.set_avail_ring_address(Some((self.base + AVAIL_RING) as u32), Some(0));
        queue.set_used_ring_address(Some((self.base + USED_RING) as u32), Some(0));
        queue.set_ready(true);
        queue
    }

    /// Writes descriptor `index`.
    pub fn set_desc(&self, index: u16, (addr, len, flags, next): Desc) {
        let at = self.base + DESC_TABLE + u64::from(index) * 16;
        self.mem.write_obj(addr, GuestAddress(at)).expect("desc");
        self.mem.write_obj(len, GuestAddress(at + 8)).expect("desc");
        self.mem
            .write_obj(flags, GuestAddress(at + 12))
            .expect("desc");
        self.mem
            .write_obj(next, GuestAddress(at + 14))
            .expect("desc");
    }

    /// Writes `descs` at indexes `first..` chained in order, and makes the
    /// chain available. Returns the head index.
    pub fn add_chain(&mut self, first: u16, descs: &[Desc]) -> u16 {
        for (i, desc) in descs.iter().enumerate() {
            self.set_desc(first + i as u16, *desc);
        }
        self.make_available(first);
        first
    }

    /// Puts `head` on the available ring and bumps its index.
    pub fn make_available(&mut self, head: u16) {
        let slot = self.base + AVAIL_RING + 4 + u64::from(self.avail_idx % self.size) * 2;
        self.mem.write_obj(head, GuestAddress(slot)).expect("avail");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem
            .write_obj(self.avail_idx, GuestAddress(self.base + AVAIL_RING + 2))
            .expect("avail idx");
    }

    /// The used ring's index.
    pub fn used_idx(&self) -> u16 {
        self.mem
            .read_obj(GuestAddress(self.base + USED_RING + 2))
            .expect("used idx")
    }

    /// Used ring entry `n`: (descriptor head, bytes written).
    pub fn used(&self, n: u16) -> (u32, u32) {
        let at = self.base + USED_RING + 4 + u64::from(n % self.size) * 8;
        (
            self.mem.read_obj(GuestAddress(at)).expect("used id"),
            self.mem.read_obj(GuestAddress(at + 4)).expect("used len"),
        )
    }
}

/// Whether `fd` turns readable within `timeout_ms` (poll(2)).
pub fn readable(fd: std::os::fd::RawFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, its count passed.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) == 1 }
}
