//! `podvm apply -f POD.yaml`: validate, resolve images, boot the VM, hand
//! the sandbox to the agent, return once the containers were started.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use podvm_image::ImageStore;

use super::Ctx;
use crate::agent_client::AgentClient;
use crate::cli::{ApplyArgs, VmArgs};
use crate::guest::{GuestAssets, KERNEL_CMDLINE};
use crate::hypervisor::{self, VmConfig};
use crate::state::PodRecord;
use crate::{manifest, sandbox};

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

/// Creates and starts the pod; on failure nothing is left behind.
pub fn create(ctx: &Ctx, mut pod: Pod, vm_args: &VmArgs) -> Result<PodRecord> {
    let (namespace, name) = manifest::pod_key(&pod)?;
    pod.metadata.namespace = Some(namespace.clone());
    pod.metadata.uid = Some(new_uid()?);
    pod.metadata.creation_timestamp = Some(Time(jiff::Timestamp::now()));
    pod.status = None;

    // Everything that can be checked is checked before anything starts.
    let store = ImageStore::open(&ctx.image_dir)
        .with_context(|| format!("cannot open the image store at {}", ctx.image_dir.display()))?;
    let sandbox = sandbox::build(&pod, &store)?;
    let assets = GuestAssets::locate(vm_args.guest_dir.as_deref())?;
    let hv = hypervisor::select(vm_args.hypervisor)?;

    let dir = ctx.state.create_pod_dir(&namespace, &name)?;
    let mut record = PodRecord {
        pod,
        vm: None,
        last_status: None,
        lifecycle: crate::owner::Lifecycle::Running,
        events: Vec::new(),
        watch: Default::default(),
    };
    match boot(
        ctx,
        &mut record,
        &dir,
        sandbox,
        &assets,
        hv.as_ref(),
        vm_args,
    ) {
        Ok(()) => Ok(record),
        Err(e) => {
            let mut e = e;
            if let Some(vm) = &record.vm {
                let console = vm.console_tail(30);
                vm.stop(Duration::ZERO);
                if !console.is_empty() {
                    e = e.context(format!("guest console (last lines):\n{console}"));
                }
            }
            let _ = ctx.state.remove(&namespace, &name);
            Err(e)
        }
    }
}

fn boot(
    ctx: &Ctx,
    record: &mut PodRecord,
    dir: &Path,
    sandbox: sandbox::Sandbox,
    assets: &GuestAssets,
    hv: &dyn hypervisor::Hypervisor,
    vm_args: &VmArgs,
) -> Result<()> {
    let run_dir = dir.join("vm");
    fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let config = VmConfig {
        kernel: assets.kernel.clone(),
        initrd: assets.initrd.clone(),
        cmdline: KERNEL_CMDLINE.into(),
        memory_mib: vm_args.memory,
        vcpus: vm_args.cpus,
        disks: sandbox.disks,
        run_dir,
    };
    let vm = hv.start(&config).context("cannot start the VM")?;
    record.vm = Some(vm.clone());
    ctx.state.save(record)?;

    // The version exchange happens as the connection is made: an agent
    // that speaks another protocol is refused before it gets the pod.
    let boot_timeout = Duration::from_secs(vm_args.boot_timeout);
    let alive = || vm.is_running();
    let (conn, _version) = AgentClient::new(&vm.vsock_uds)
        .connect(Instant::now() + boot_timeout, &alive)
        .context("the guest agent is not reachable")?;
    conn.create_sandbox(&sandbox.spec, boot_timeout)
        .context("the agent could not create the sandbox")?;
    if let Ok(status) = conn.status(Duration::from_secs(10)) {
        record.last_status = Some(status);
    }
    ctx.state.save(record)
}

/// A random RFC 4122 version-4 UUID, as Kubernetes gives every object.
fn new_uid() -> Result<String> {
    let mut b = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("cannot read /dev/urandom")?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}
