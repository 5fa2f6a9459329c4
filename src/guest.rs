//! Where the guest kernel and initramfs are, and the kernel command line.
//!
//! `guest-image/build.sh` writes them to `<repo>/target/guest/`; an
//! installed podvm finds them next to its binary (`<exe>/../guest/`) or at
//! `--guest-dir`/`PODVM_GUEST_DIR`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// Kernel command line for a pod VM. `panic=-1` turns a guest panic into a
/// VM exit; `random.trust_cpu=on` keeps the agent from waiting for entropy.
pub const KERNEL_CMDLINE: &str = "console=ttyS0 panic=-1 random.trust_cpu=on rdinit=/init quiet";

/// The guest boot files.
#[derive(Debug, Clone)]
pub struct GuestAssets {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

impl GuestAssets {
    pub fn locate(explicit: Option<&Path>) -> Result<GuestAssets> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(dir) = explicit {
            candidates.push(dir.to_path_buf());
        } else if let Ok(exe) = std::env::current_exe() {
            // target/release/podvm -> target/guest
            if let Some(bin_dir) = exe.parent() {
                candidates.push(bin_dir.join("../guest"));
                candidates.push(bin_dir.join("../../guest"));
            }
            candidates.push(PathBuf::from("/usr/share/podvm/guest"));
        }
        for dir in &candidates {
            let kernel = dir.join("vmlinux");
            let initrd = dir.join("initramfs.cpio.gz");
            if kernel.is_file() && initrd.is_file() {
                return Ok(GuestAssets { kernel, initrd });
            }
        }
        bail!(
            "guest kernel/initramfs not found (looked in {}); build them with guest-image/build.sh or pass --guest-dir",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}
