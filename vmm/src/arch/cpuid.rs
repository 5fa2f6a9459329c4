//! CPUID for a vCPU: KVM's supported set, filtered per vCPU.
//!
//! Leaf and bit numbers from arch/x86/include/asm/cpufeatures.h and the
//! Intel SDM, Vol. 2A, "CPUID".

use kvm_bindings::kvm_cpuid_entry2;

/// Leaf 1: feature information.
const LEAF_FEATURES: u32 = 0x1;
/// Leaf 4: deterministic cache parameters.
const LEAF_CACHE_PARAMS: u32 = 0x4;
/// Leaf 0xa: architectural performance monitoring.
const LEAF_PERFMON: u32 = 0xa;
/// Leaf 0xb: extended topology.
const LEAF_EXT_TOPOLOGY: u32 = 0xb;
/// Leaf 0x1f: V2 extended topology.
const LEAF_V2_EXT_TOPOLOGY: u32 = 0x1f;

/// Leaf 1 ECX: TSC-deadline timer (`X86_FEATURE_TSC_DEADLINE_TIMER`).
const ECX_TSC_DEADLINE: u32 = 1 << 24;
/// Leaf 1 ECX: running under a hypervisor (`X86_FEATURE_HYPERVISOR`).
const ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 1 EDX: multi-threading / more than one logical CPU (`X86_FEATURE_HT`).
const EDX_HTT: u32 = 1 << 28;
/// Leaf 1 EBX bits 15:8: CLFLUSH line size in 8-byte units (64 bytes).
const CLFLUSH_LINE_SIZE: u32 = 8;

/// What the filter needs to know about the vCPU and the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidContext {
    /// This vCPU's index, used as its APIC ID.
    pub vcpu_id: u8,
    /// Number of vCPUs in the VM.
    pub vcpu_count: u8,
    /// Whether KVM emulates the TSC-deadline timer (`KVM_CAP_TSC_DEADLINE_TIMER`).
    pub tsc_deadline: bool,
}

/// Adjusts KVM's supported CPUID entries for one vCPU: APIC IDs and
/// topology, the hypervisor bit, TSC-deadline only when KVM emulates it,
/// and no performance monitoring (no vPMU is offered).
pub fn filter_cpuid(entries: &mut [kvm_cpuid_entry2], ctx: CpuidContext) {
    let apic_id = u32::from(ctx.vcpu_id);
    let count = u32::from(ctx.vcpu_count.max(1));
    for entry in entries.iter_mut() {
        match entry.function {
            LEAF_FEATURES => {
                entry.ebx = (apic_id << 24) | (count << 16) | (CLFLUSH_LINE_SIZE << 8);
                entry.ecx |= ECX_HYPERVISOR;
                if ctx.tsc_deadline {
                    entry.ecx |= ECX_TSC_DEADLINE;
                } else {
                    entry.ecx &= !ECX_TSC_DEADLINE;
                }
                if count > 1 {
                    entry.edx |= EDX_HTT;
                } else {
                    entry.edx &= !EDX_HTT;
                }
            }
            LEAF_CACHE_PARAMS => {
                // EAX[31:26]: cores per package - 1; all vCPUs are cores of one package.
                entry.eax = (entry.eax & 0x03ff_ffff) | ((count - 1) << 26);
            }
            LEAF_PERFMON => {
                entry.eax = 0;
                entry.ebx = 0;
                entry.ecx = 0;
                entry.edx = 0;
            }
            LEAF_EXT_TOPOLOGY | LEAF_V2_EXT_TOPOLOGY => {
                // EDX: x2APIC ID of the current logical processor.
                entry.edx = apic_id;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            eax: 0xffff_ffff,
            ebx: 0xffff_ffff,
            ecx: 0x00ff_ffff,
            edx: 0xffff_ffff,
            ..Default::default()
        }
    }

    #[test]
    fn apic_ids_topology_and_hypervisor_bit_are_set() {
        let mut entries = [
            entry(1),
            entry(4),
            entry(0xa),
            entry(0xb),
            entry(0x8000_0001),
        ];
        let untouched = entries[4];
        filter_cpuid(
            &mut entries,
            CpuidContext {
                vcpu_id: 2,
                vcpu_count: 4,
                tsc_deadline: false,
            },
        );
        assert_eq!(entries[0].ebx, (2 << 24) | (4 << 16) | (8 << 8));
        assert_ne!(entries[0].ecx & ECX_HYPERVISOR, 0);
        assert_eq!(entries[0].ecx & ECX_TSC_DEADLINE, 0);
        assert_ne!(entries[0].edx & EDX_HTT, 0);
        assert_eq!(entries[1].eax >> 26, 3);
        assert_eq!(
            (
                entries[2].eax,
                entries[2].ebx,
                entries[2].ecx,
                entries[2].edx
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(entries[3].edx, 2);
        assert_eq!(entries[4], untouched);
    }

    #[test]
    fn single_vcpu_has_no_htt_and_keeps_tsc_deadline_when_emulated() {
        let mut entries = [entry(1)];
        filter_cpuid(
            &mut entries,
            CpuidContext {
                vcpu_id: 0,
                vcpu_count: 1,
                tsc_deadline: true,
            },
        );
        assert_eq!(entries[0].edx & EDX_HTT, 0);
        assert_ne!(entries[0].ecx & ECX_TSC_DEADLINE, 0);
        assert_eq!(entries[0].ebx >> 24, 0);
    }
}
