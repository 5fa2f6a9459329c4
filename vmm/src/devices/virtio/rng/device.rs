//! The virtio-rng device model. Only write-only descriptors are filled;
//! a chain with a read-only descriptor, or one pointing outside guest
//! memory, is completed with the bytes written so far and logged.

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::{MAX_REQUEST_BYTES, QUEUE_SIZE};
use crate::devices::virtio::{Error, Result, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_ID_RNG};

/// The entropy device.
pub struct Rng {
    queue_sizes: [u16; 1],
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

impl Rng {
    /// A device with one request queue.
    pub fn new() -> Self {
        Self {
            queue_sizes: [QUEUE_SIZE],
        }
    }
}

/// Fills `buf` from the kernel's CSPRNG.
fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        } else {
            done += n as usize;
        }
    }
    Ok(())
}

impl Rng {
    /// Serves one chain; returns the bytes written into it.
    fn serve(chain: virtio_queue::DescriptorChain<&GuestMemoryMmap>, mem: &GuestMemoryMmap) -> u32 {
        let mut written = 0usize;
        let mut buf = Vec::new();
        for desc in chain {
            if !desc.is_write_only() {
                log::warn!("virtio-rng: read-only descriptor in a request; dropping the rest");
                break;
            }
            let len = (desc.len() as usize).min(MAX_REQUEST_BYTES - written);
            if len == 0 {
                break;
            }
            buf.resize(len, 0);
            if let Err(e) = fill_random(&mut buf) {
                log::error!("virtio-rng: getrandom failed: {e}");
                break;
            }
            if let Err(e) = mem.write_slice(&buf, desc.addr()) {
                log::warn!("virtio-rng: buffer outside guest memory ({e}); dropping the rest");
                break;
            }
            written += len;
        }
        written as u32
    }
}

impl VirtioDevice for Rng {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_RNG
    }

    fn avail_features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, _offset: u64, data: &mut [u8]) {
        // virtio-rng has no configuration space.
        data.fill(0);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
    ) -> Result<bool> {
        let Some(queue) = queues.get_mut(index) else {
            return Ok(false);
        };
        let mut used = false;
        while let Some(chain) = queue.pop_descriptor_chain(mem) {
            let head = chain.head_index();
            let written = Self::serve(chain, mem);
            queue
                .add_used(mem, head, written)
                .map_err(|e| Error::UsedRing(e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    fn reset(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::test_driver::{TestDriver, DATA, F_NEXT, F_WRITE, MEM_SIZE};
    use vm_memory::GuestAddress;

    fn run(driver: &TestDriver, queue: &mut Queue) -> Result<bool> {
        Rng::new().process_queue(0, std::slice::from_mut(queue), &driver.mem)
    }

    #[test]
    fn fills_write_only_buffers_across_a_chain() -> Result<()> {
        let mut driver = TestDriver::new(16);
        let mut queue = driver.queue(QUEUE_SIZE);
        driver.add_chain(
            0,
            &[(DATA, 64, F_WRITE | F_NEXT, 1), (DATA + 64, 64, F_WRITE, 0)],
        );
        assert!(run(&driver, &mut queue)?);
        assert_eq!(driver.used_idx(), 1);
        assert_eq!(driver.used(0), (0, 128));
        let mut bytes = [0u8; 128];
        driver
            .mem
            .read_slice(&mut bytes, GuestAddress(DATA))
            .map_err(|e| Error::UsedRing(e.to_string()))?;
        assert!(bytes.iter().any(|b| *b != 0), "random bytes were written");
        assert!(!run(&driver, &mut queue)?, "nothing new to do");
        Ok(())
    }

    #[test]
    fn read_only_and_out_of_memory_descriptors_are_dropped() -> Result<()> {
        let mut driver = TestDriver::new(16);
        let mut queue = driver.queue(QUEUE_SIZE);
        driver.add_chain(0, &[(DATA, 32, 0, 0)]);
        driver.add_chain(
            1,
            &[
                (DATA, 16, F_WRITE | F_NEXT, 2),
                (MEM_SIZE as u64 - 8, 64, F_WRITE, 0),
            ],
        );
        driver.add_chain(3, &[(u64::MAX - 4, 64, F_WRITE, 0)]);
        assert!(run(&driver, &mut queue)?);
        assert_eq!(driver.used_idx(), 3);
        assert_eq!(driver.used(0), (0, 0));
        assert_eq!(driver.used(1), (1, 16));
        assert_eq!(driver.used(2), (3, 0));
        Ok(())
    }

    #[test]
    fn looped_and_oversized_chains_are_bounded() -> Result<()> {
        let mut driver = TestDriver::new(4);
        let mut queue = driver.queue(QUEUE_SIZE);
        // 0 -> 1 -> 0 -> ... : the queue stops after `size` descriptors.
        driver.set_desc(0, (DATA, 8, F_WRITE | F_NEXT, 1));
        driver.set_desc(1, (DATA + 8, 8, F_WRITE | F_NEXT, 0));
        driver.make_available(0);
        // A descriptor claiming 4 GiB gets at most MAX_REQUEST_BYTES.
        driver.set_desc(2, (DATA, u32::MAX, F_WRITE, 0));
        driver.make_available(2);
        // A `next` beyond the table ends the chain.
        driver.set_desc(3, (DATA, 8, F_WRITE | F_NEXT, 200));
        driver.make_available(3);
        assert!(run(&driver, &mut queue)?);
        assert_eq!(driver.used_idx(), 3);
        assert_eq!(driver.used(0), (0, 32), "four descriptors at most");
        assert_eq!(driver.used(1), (2, MAX_REQUEST_BYTES as u32));
        assert_eq!(driver.used(2), (3, 8));
        Ok(())
    }

    #[test]
    fn avail_index_running_ahead_is_refused() -> Result<()> {
        let driver = TestDriver::new(4);
        let mut queue = driver.queue(QUEUE_SIZE);
        driver
            .mem
            .write_obj(
                100u16,
                GuestAddress(crate::devices::virtio::test_driver::AVAIL_RING + 2),
            )
            .map_err(|e| Error::UsedRing(e.to_string()))?;
        assert!(!run(&driver, &mut queue)?);
        assert_eq!(driver.used_idx(), 0);
        Ok(())
    }
}
