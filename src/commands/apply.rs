//! `podvm apply -f POD.yaml`: validate, resolve images, and hand the pod
//! to its owner, which boots the VM and gives the sandbox to the agent;
//! returns once the containers were started (or the pod failed to start).

use std::path::PathBuf;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_image::ImageStore;

use super::Ctx;
use crate::cli::{ApplyArgs, VmArgs};
use crate::guest::{GuestAssets, KERNEL_CMDLINE};
use crate::hypervisor::{self, VmConfig};
use crate::owner::LaunchPlan;
use crate::state::PodRecord;
use crate::{manifest, sandbox, scratch};

pub fn run(ctx: &Ctx, args: &ApplyArgs) -> Result<()> {
    let pod = manifest::load(&args.file)?;
    let record = create(ctx, pod, &args.vm)?;
    let name = record.pod.metadata.name.as_deref().unwrap_or_default();
    println!("pod/{name} created");
    if let Some(st) = &record.last_status {
        for c in &st.containers {
            if let podvm_proto::ContainerState::Terminated {
                reason,
                message: Some(m),
                ..
            } = &c.state
            {
                eprintln!("container {}: {reason}: {m}", c.name);
            }
        }
    }
    Ok(())
}

/// Creates and starts the pod through its owner; on failure nothing is
/// left behind. Everything that can be checked is checked before anything
/// starts.
pub fn create(ctx: &Ctx, mut pod: Pod, vm_args: &VmArgs) -> Result<PodRecord> {
    let (namespace, _name) = manifest::pod_key(&pod)?;
    pod.metadata.namespace = Some(namespace);
    pod.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
    pod.metadata.creation_timestamp = Some(Time(jiff::Timestamp::now()));
    pod.status = None;

    let store = ImageStore::open(&ctx.image_dir)
        .with_context(|| format!("cannot open the image store at {}", ctx.image_dir.display()))?;
    let sandbox = sandbox::build(&pod, &store)?;
    if !sandbox.scratch.is_empty() {
        scratch::require_mkfs()?;
    }
    let assets = GuestAssets::locate(vm_args.guest_dir.as_deref())?;
    // Chosen here too, so a host that cannot run the backend fails now;
    // the owner makes the same choice.
    hypervisor::select(vm_args.hypervisor)?;
    let plan = LaunchPlan {
        sandbox: sandbox.spec,
        vm: VmConfig {
            kernel: assets.kernel,
            initrd: assets.initrd,
            cmdline: KERNEL_CMDLINE.into(),
            memory_mib: vm_args.memory,
            vcpus: vm_args.cpus,
            disks: sandbox.disks,
            // The manager puts it in the pod's folder.
            run_dir: PathBuf::new(),
        },
        scratch_disks: sandbox.scratch,
        hypervisor: vm_args.hypervisor,
        boot_timeout_secs: vm_args.boot_timeout,
    };
    Ok(ctx.manager.create(pod, plan)?)
}
