//! Fuzzes the builtin VMM's virtqueue handling as a hostile guest would
//! drive it: the input becomes guest memory (descriptor table, rings,
//! buffers) and queue geometry, and the virtio-blk and virtio-rng devices
//! and the vsock packet reader must serve or refuse whatever they find —
//! never panic, never loop forever, never touch memory outside the guest.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use podvm_vmm::config::DiskConfig;
use podvm_vmm::devices::virtio::blk::Block;
use podvm_vmm::devices::virtio::rng::Rng;
use podvm_vmm::devices::virtio::vsock::packet::read_tx;
use podvm_vmm::devices::virtio::VirtioDevice;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const MEM: usize = 64 * 1024;

/// A small disk image shared by all runs.
fn disk() -> &'static PathBuf {
    static DISK: OnceLock<PathBuf> = OnceLock::new();
    DISK.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("podvm-fuzz-disk-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).expect("create fuzz disk");
        f.write_all(&[0x5a; 8192]).expect("write fuzz disk");
        path
    })
}

fn queue(data: &[u8], size_byte: u8) -> Option<Queue> {
    let mut q = Queue::new(256).ok()?;
    // Any size the driver may write, including invalid ones.
    q.set_size(u16::from(size_byte) + 1);
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) % MEM as u32;
    q.set_desc_table_address(Some(word(0) & !0xf), Some(0));
    q.set_avail_ring_address(Some(word(4) & !0x1), Some(0));
    q.set_used_ring_address(Some(word(8) & !0x3), Some(0));
    q.set_ready(true);
    Some(q)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let Ok(mem) = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]) else {
        return;
    };
    let image = &data[16..data.len().min(16 + MEM)];
    let _ = mem.write_slice(image, GuestAddress(0));
    let which = data[12] % 3;
    let Some(q) = queue(data, data[13]) else { return };
    let mut queues = [q];
    match which {
        0 => {
            let config = DiskConfig {
                path: disk().clone(),
                ro: data[14] & 1 == 1,
                serial: Some("fuzz".into()),
            };
            if let Ok(mut blk) = Block::new(&config) {
                let _ = blk.process_queue(0, &mut queues, &mem);
            }
        }
        1 => {
            let mut rng = Rng::new();
            let _ = rng.process_queue(0, &mut queues, &mem);
        }
        _ => {
            let q = &mut queues[0];
            // Bounded: a queue never yields more chains than its size.
            for _ in 0..512 {
                let Some(chain) = q.pop_descriptor_chain(&mem) else { break };
                let _ = read_tx(chain, &mem);
            }
        }
    }
});
