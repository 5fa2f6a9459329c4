//! The KVM VM: guest memory registered as KVM memory slots, the in-kernel
//! irqchip (PIC + IOAPIC + LAPICs) and PIT.

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{IoEventAddress, Kvm, VmFd};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

use super::{Error, Result};
use crate::arch::layout::{ram_ranges, KVM_TSS_ADDR};

/// A VM with its memory. The memory is dropped after the VM.
pub struct Vm {
    fd: VmFd,
    memory: GuestMemoryMmap,
}

impl Vm {
    /// Creates a VM with `mem_size` bytes of RAM, an in-kernel irqchip and PIT.
    ///
    /// The memory slots go in before the irqchip, as in Firecracker: with an
    /// irqchip present each `KVM_SET_USER_MEMORY_REGION` waited 6–8 ms on
    /// this project's hosts (`strace -T`), without one 0.2 ms — half the
    /// VMM's start time (docs/benchmarks.md).
    pub fn create(kvm: &Kvm, mem_size: u64) -> Result<Self> {
        let fd = kvm
            .create_vm()
            .map_err(|e| Error::Kvm("KVM_CREATE_VM", e))?;
        let ranges: Vec<(GuestAddress, usize)> = ram_ranges(mem_size)
            .into_iter()
            .map(|(start, len)| (GuestAddress(start), len as usize))
            .collect();
        let memory = GuestMemoryMmap::from_ranges(&ranges).map_err(Error::GuestMemory)?;
        for (slot, region) in (0u32..).zip(memory.iter()) {
            let host = memory
                .get_host_address(region.start_addr())
                .map_err(Error::GuestMemoryAccess)?;
            let desc = kvm_userspace_memory_region {
                slot,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
            };
            // SAFETY: `host` is the start of a `region.len()`-byte mapping
            // owned by `memory`, which lives in the same struct as `fd` and
            // is dropped after it, so the mapping outlives the VM's use.
            unsafe { fd.set_user_memory_region(desc) }
                .map_err(|e| Error::Kvm("KVM_SET_USER_MEMORY_REGION", e))?;
        }
        fd.set_tss_address(KVM_TSS_ADDR as usize)
            .map_err(|e| Error::Kvm("KVM_SET_TSS_ADDR", e))?;
        fd.create_irq_chip()
            .map_err(|e| Error::Kvm("KVM_CREATE_IRQCHIP", e))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        fd.create_pit2(pit)
            .map_err(|e| Error::Kvm("KVM_CREATE_PIT2", e))?;
        Ok(Self { fd, memory })
    }

    /// The KVM VM.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Guest memory.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// Makes 4-byte guest writes of `datamatch` to the MMIO address `addr`
    /// signal `event` inside KVM instead of exiting to the VMM.
    pub fn register_ioevent(&self, event: &EventFd, addr: u64, datamatch: u32) -> Result<()> {
        self.fd
            .register_ioevent(event, &IoEventAddress::Mmio(addr), datamatch)
            .map_err(|e| Error::Kvm("KVM_IOEVENTFD", e))
    }

    /// Makes writes to `event` inject interrupt line `gsi`.
    pub fn register_irqfd(&self, event: &EventFd, gsi: u32) -> Result<()> {
        self.fd
            .register_irqfd(event, gsi)
            .map_err(|e| Error::Kvm("KVM_IRQFD", e))
    }
}
