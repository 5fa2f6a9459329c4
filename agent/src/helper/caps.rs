//! The process's capabilities from the spec, as runc sets them: the
//! bounding set is cut down first (while the helper still has every
//! capability), the identity changes with the permitted set kept, then the
//! inheritable, effective, permitted and ambient sets are set. Capabilities
//! the running kernel does not know are left out.

use anyhow::Context;
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

/// The kernel's name of a capability (`CAP_NET_RAW`).
pub fn name(cap: Capability) -> String {
    format!("CAP_{cap}")
}

/// The kernel capability of a spec capability, if this build knows it.
fn kernel_cap(cap: Capability) -> Option<caps::Capability> {
    name(cap).parse().ok()
}

/// The capabilities of `set` the running kernel has.
fn kernel_set(set: &Option<Capabilities>, supported: &CapsHashSet) -> CapsHashSet {
    set.iter()
        .flatten()
        .filter_map(|c| kernel_cap(*c))
        .filter(|c| supported.contains(c))
        .collect()
}

/// Drops from the bounding set everything the spec's bounding set lacks.
pub fn limit_bounding(spec: &LinuxCapabilities) -> anyhow::Result<()> {
    let supported = caps::runtime::thread_all_supported();
    let keep = kernel_set(spec.bounding(), &supported);
    for cap in supported.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    Ok(())
}

/// Sets the inheritable, effective, permitted and ambient sets (after the
/// identity change, with the permitted set kept across it).
pub fn set_sets(spec: &LinuxCapabilities) -> anyhow::Result<()> {
    let supported = caps::runtime::thread_all_supported();
    // Inheritable first, while the effective set still has CAP_SETPCAP;
    // effective before permitted, which must stay a superset of it.
    for (set, wanted) in [
        (CapSet::Inheritable, spec.inheritable()),
        (CapSet::Effective, spec.effective()),
        (CapSet::Permitted, spec.permitted()),
    ] {
        caps::set(None, set, &kernel_set(wanted, &supported))
            .with_context(|| format!("setting the {set:?} capabilities"))?;
    }
    let ambient = kernel_set(spec.ambient(), &supported);
    if ambient.is_empty() {
        // Kernels before 4.3 have no ambient set: nothing to clear there.
        let _ = caps::clear(None, CapSet::Ambient);
    } else {
        caps::set(None, CapSet::Ambient, &ambient).context("setting the ambient capabilities")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::defaults::CAPABILITIES;

    #[test]
    fn every_spec_capability_maps_to_the_kernels() {
        for cap in CAPABILITIES {
            assert!(kernel_cap(cap).is_some(), "{cap}");
        }
        for cap in [
            Capability::SysAdmin,
            Capability::DacReadSearch,
            Capability::SysTtyConfig,
            Capability::CheckpointRestore,
            Capability::Bpf,
            Capability::Perfmon,
            Capability::Syslog,
            Capability::WakeAlarm,
        ] {
            assert!(kernel_cap(cap).is_some(), "{cap}");
        }
        assert_eq!(name(Capability::NetBindService), "CAP_NET_BIND_SERVICE");
        assert_eq!(kernel_cap(Capability::NetRaw).map(|c| c.index()), Some(13));
    }
}
