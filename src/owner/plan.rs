//! The launch plan: everything an owner needs to boot a pod, resolved by
//! `apply` before anything starts (validated manifest, images turned into
//! disks, guest files located, hypervisor chosen) and written next to the
//! record, so an owner started later — after an interrupted `apply` or a
//! killed owner — boots exactly the same pod.

use std::path::Path;

use anyhow::{Context, Result};
use podvm_proto::SandboxSpec;
use serde::{Deserialize, Serialize};

use crate::hypervisor::{HypervisorKind, VmConfig};
use crate::scratch::ScratchDisk;
use crate::state::write_atomic;

/// File name of the plan in the pod's folder.
pub const PLAN_FILE: &str = "launch.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchPlan {
    pub sandbox: SandboxSpec,
    pub vm: VmConfig,
    /// Scratch disks of disk `emptyDir` volumes: created and formatted in
    /// `vm.run_dir` when the pod boots, then added to the VM's disks.
    #[serde(default)]
    pub scratch_disks: Vec<ScratchDisk>,
    pub hypervisor: HypervisorKind,
    /// How long the agent may take to answer after the VM started.
    pub boot_timeout_secs: u64,
}

impl LaunchPlan {
    pub fn save(&self, pod_dir: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).context("cannot encode the launch plan")?;
        write_atomic(&pod_dir.join(PLAN_FILE), &data)
    }

    pub fn load(pod_dir: &Path) -> Result<LaunchPlan> {
        let path = pod_dir.join(PLAN_FILE);
        let data =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("corrupt {}", path.display()))
    }
}
