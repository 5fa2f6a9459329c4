//! The probe VM: KVM VM, 2 MiB of guest memory holding the page tables,
//! GDT, TSS and code of one [`GuestProgram`], and its single vCPU.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use super::guest_code::GuestProgram;
use super::layout::{
    build_gdt, build_page_tables, build_tss, gdt_bytes, table_bytes, GDT_ADDR, MEM_SIZE, PDPT_ADDR,
    PD_ADDR, PML4_ADDR, RING0_CODE_ADDR, SYSCALL_HANDLER_ADDR, TSS_ADDR, USER_CODE_ADDR,
};
use crate::error::{Error, Result};

/// A VM ready to run one probe program. The vCPU is not configured yet
/// (see `vcpu_setup::configure`). Fields are dropped in order: vCPU, VM,
/// then the memory the VM maps.
pub struct ProbeVm {
    /// The only vCPU.
    pub vcpu: VcpuFd,
    /// The VM; only held so it lives as long as the vCPU.
    _vm: VmFd,
    /// Guest memory mapped into the VM at guest-physical 0; only held so the
    /// mapping outlives the VM.
    _memory: GuestMemoryMmap,
}

impl ProbeVm {
    /// Creates the VM, fills guest memory with `program` and creates vCPU 0.
    pub fn create(kvm: &Kvm, program: GuestProgram) -> Result<Self> {
        let vm = kvm.create_vm().map_err(Error::CreateVm)?;
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM_SIZE)])
            .map_err(Error::GuestMemory)?;
        write_image(&memory, program)?;
        let host_addr = memory
            .get_host_address(GuestAddress(0))
            .map_err(Error::GuestMemoryAccess)?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: MEM_SIZE as u64,
            userspace_addr: host_addr as u64,
        };
        // SAFETY: `host_addr` is the start of a MEM_SIZE-byte mapping owned by
        // `memory`, which lives in the same struct as `vm` and is dropped
        // after it, so the region stays valid for the VM's whole life.
        unsafe { vm.set_user_memory_region(region) }.map_err(Error::SetMemoryRegion)?;
        let vcpu = vm.create_vcpu(0).map_err(Error::CreateVcpu)?;
        Ok(Self {
            vcpu,
            _vm: vm,
            _memory: memory,
        })
    }
}

/// Writes the page tables, GDT, TSS and the program's code pages.
fn write_image(memory: &GuestMemoryMmap, program: GuestProgram) -> Result<()> {
    let tables = build_page_tables();
    let image = program.image();
    let parts: [(u64, Vec<u8>); 8] = [
        (PML4_ADDR, table_bytes(&tables.pml4)),
        (PDPT_ADDR, table_bytes(&tables.pdpt)),
        (PD_ADDR, table_bytes(&tables.pd)),
        (GDT_ADDR, gdt_bytes(&build_gdt())),
        (TSS_ADDR, build_tss().to_vec()),
        (RING0_CODE_ADDR, image.ring0),
        (USER_CODE_ADDR, image.user),
        (SYSCALL_HANDLER_ADDR, image.handler),
    ];
    for (addr, bytes) in parts {
        memory
            .write_slice(&bytes, GuestAddress(addr))
            .map_err(Error::GuestMemoryAccess)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_lands_at_the_layout_addresses() -> std::result::Result<(), Box<dyn std::error::Error>>
    {
        let memory = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM_SIZE)])?;
        write_image(&memory, GuestProgram::SyscallFromRing3)?;
        let pml4: u64 = memory.read_obj(GuestAddress(PML4_ADDR))?;
        assert_eq!(pml4 & !0xfff, PDPT_ADDR);
        let kernel_cs: u64 = memory.read_obj(GuestAddress(GDT_ADDR + 8))?;
        assert_eq!(kernel_cs, build_gdt()[1]);
        let mut syscall = [0u8; 2];
        memory.read_slice(&mut syscall, GuestAddress(USER_CODE_ADDR))?;
        assert_eq!(syscall, [0x0f, 0x05]);
        Ok(())
    }
}
