//! The virtio-vsock device model: config space (the guest CID), the three
//! queues, and the muxer behind them. The muxer's epoll fd is the device's
//! one backend fd, served by the device event loop.

use std::os::fd::RawFd;

use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;

use super::backend::Backend;
use super::muxer::Muxer;
use super::packet::read_tx;
use super::{Result, EVENT_QUEUE, MAX_BACKLOG, QUEUE_SIZE, RX_QUEUE, TX_QUEUE};
use crate::devices::virtio::{self, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_ID_VSOCK};

/// The vsock device.
pub struct Vsock {
    muxer: Muxer,
    guest_cid: u64,
    queue_sizes: [u16; 3],
}

impl Vsock {
    /// A device for the guest `guest_cid`, its host side served by `backend`.
    pub fn new(guest_cid: u64, backend: Box<dyn Backend>) -> Result<Self> {
        Ok(Self {
            muxer: Muxer::new(backend, guest_cid)?,
            guest_cid,
            queue_sizes: [QUEUE_SIZE; 3],
        })
    }

    /// The muxer, for tests that change its limits.
    #[cfg(test)]
    pub(super) fn muxer_mut(&mut self) -> &mut Muxer {
        &mut self.muxer
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.muxer.connection_count()
    }

    /// Reads the guest's packets while replies have room; `true` if any.
    fn process_tx(&mut self, tx: &mut Queue, mem: &GuestMemoryMmap) -> virtio::Result<bool> {
        let mut used = false;
        while self.muxer.backlog() < MAX_BACKLOG {
            let Some(chain) = tx.pop_descriptor_chain(mem) else {
                break;
            };
            let head = chain.head_index();
            match read_tx(chain, mem) {
                Ok(packet) => self.muxer.handle_tx(packet),
                Err(e) => log::warn!("vsock: tx packet dropped: {e}"),
            }
            tx.add_used(mem, head, 0)
                .map_err(|e| virtio::Error::UsedRing(e.to_string()))?;
            used = true;
        }
        Ok(used)
    }

    /// Moves packets both ways until nothing more can be done now.
    fn serve(&mut self, queues: &mut [Queue], mem: &GuestMemoryMmap) -> virtio::Result<bool> {
        let [rx, tx, _event] = queues else {
            return Ok(false);
        };
        let mut used = false;
        loop {
            let sent = tx.ready() && self.process_tx(tx, mem)?;
            let received = rx.ready() && self.muxer.fill_rx(rx, mem)?;
            used |= sent | received;
            if !sent || self.muxer.backlog() >= MAX_BACKLOG {
                return Ok(used);
            }
        }
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }

    fn avail_features(&self) -> u64 {
        1 << VIRTIO_F_VERSION_1
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        // struct virtio_vsock_config { __le64 guest_cid; }
        virtio::read_config_bytes(&self.guest_cid.to_le_bytes(), offset, data);
    }

    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
    ) -> virtio::Result<bool> {
        match index {
            RX_QUEUE | TX_QUEUE => self.serve(queues, mem),
            // Event buffers are kept for events we never send.
            EVENT_QUEUE => Ok(false),
            _ => Ok(false),
        }
    }

    fn event_fds(&self) -> Vec<RawFd> {
        vec![self.muxer.epoll_fd()]
    }

    fn handle_event(
        &mut self,
        _index: usize,
        queues: &mut [Queue],
        mem: &GuestMemoryMmap,
    ) -> virtio::Result<bool> {
        self.muxer.process_events();
        self.serve(queues, mem)
    }

    fn reset(&mut self) {
        self.muxer.reset();
    }
}
