//! Booting a pod, step by step: make its scratch disks, start the VM,
//! record it, reach the agent, hand it the sandbox, read the first status. A step that fails undoes
//! what the steps before it made (the VM's processes and sockets) and says
//! which step failed and why, with the end of the guest console.

use std::sync::Arc;
use std::time::{Duration, Instant};

use podvm_proto::SandboxStatus;

use super::lifecycle::FailureReason;
use super::link::{AgentDialer, AgentLink};
use super::plan::LaunchPlan;
use crate::hypervisor::{Hypervisor, VmConfig, VmRecord};
use crate::scratch;

/// Lines of guest console quoted in a boot failure.
const CONSOLE_LINES: usize = 30;

/// The steps of a boot, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootStep {
    /// Creating and formatting the scratch disks of disk `emptyDir`s.
    PrepareDisks,
    StartVm,
    RecordVm,
    ConnectAgent,
    CreateSandbox,
    ReadStatus,
}

impl BootStep {
    fn reason(self) -> FailureReason {
        match self {
            BootStep::PrepareDisks | BootStep::StartVm | BootStep::RecordVm => {
                FailureReason::VmStartFailed
            }
            BootStep::ConnectAgent | BootStep::ReadStatus => FailureReason::AgentUnreachable,
            BootStep::CreateSandbox => FailureReason::SandboxCreateFailed,
        }
    }

    fn doing(self) -> &'static str {
        match self {
            BootStep::PrepareDisks => "cannot prepare the pod's scratch disks",
            BootStep::StartVm => "cannot start the VM",
            BootStep::RecordVm => "cannot record the VM",
            BootStep::ConnectAgent => "the guest agent is not reachable",
            BootStep::CreateSandbox => "the agent could not create the sandbox",
            BootStep::ReadStatus => "the agent did not report the sandbox's status",
        }
    }
}

/// A boot that failed; everything it had started was stopped.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BootError {
    pub step: BootStep,
    pub reason: FailureReason,
    /// What failed, the cause chain, and the end of the guest console.
    pub message: String,
}

/// A running pod.
pub struct Booted {
    pub vm: VmRecord,
    pub agent: Arc<dyn AgentLink>,
    pub status: SandboxStatus,
}

fn failed(step: BootStep, cause: impl std::fmt::Display, vm: Option<&VmRecord>) -> BootError {
    let mut message = format!("{}: {cause}", step.doing());
    if let Some(vm) = vm {
        let console = vm.console_tail(CONSOLE_LINES);
        vm.stop(Duration::ZERO);
        if !console.is_empty() {
            message.push_str(&format!("\nguest console (last lines):\n{console}"));
        }
    }
    BootError {
        step,
        reason: step.reason(),
        message,
    }
}

/// Boots `plan` on `hv`; `record_vm` saves the started VM in the pod record
/// (so a new owner finds it if this one dies mid-boot).
pub fn boot(
    plan: &LaunchPlan,
    hv: &dyn Hypervisor,
    dialer: &dyn AgentDialer,
    record_vm: &mut dyn FnMut(&VmRecord) -> anyhow::Result<()>,
) -> Result<Booted, BootError> {
    std::fs::create_dir_all(&plan.vm.run_dir).map_err(|e| {
        failed(
            BootStep::StartVm,
            format!("{}: {e}", plan.vm.run_dir.display()),
            None,
        )
    })?;
    let config = with_scratch_disks(plan)?;
    let vm = hv
        .start(&config)
        .map_err(|e| failed(BootStep::StartVm, format!("{e:#}"), None))?;
    if let Err(e) = record_vm(&vm) {
        return Err(failed(BootStep::RecordVm, format!("{e:#}"), Some(&vm)));
    }
    connect_and_create(plan, vm, dialer)
}

/// The VM's configuration with the plan's scratch disks, made now in the
/// VM's folder (they go with the pod's folder), appended to its disks.
fn with_scratch_disks(plan: &LaunchPlan) -> Result<VmConfig, BootError> {
    let mut config = plan.vm.clone();
    for disk in &plan.scratch_disks {
        let made = scratch::prepare(&plan.vm.run_dir, disk)
            .map_err(|e| failed(BootStep::PrepareDisks, e, None))?;
        config.disks.push(made);
    }
    Ok(config)
}

/// The steps after the VM runs: also what a new owner does for a pod whose
/// previous owner died after starting the VM. A sandbox the agent already
/// has (the previous owner got that far) is taken as created.
pub fn connect_and_create(
    plan: &LaunchPlan,
    vm: VmRecord,
    dialer: &dyn AgentDialer,
) -> Result<Booted, BootError> {
    let timeout = Duration::from_secs(plan.boot_timeout_secs);
    let agent = match dialer.dial(&vm, Instant::now() + timeout) {
        Ok(agent) => agent,
        Err(e) => return Err(failed(BootStep::ConnectAgent, format!("{e:#}"), Some(&vm))),
    };
    match agent.create_sandbox(&plan.sandbox, timeout) {
        Ok(()) => {}
        Err(e)
            if e.code() == Some(podvm_proto::Code::FAILED_PRECONDITION)
                && sandbox_exists(&*agent) => {}
        Err(e) => return Err(failed(BootStep::CreateSandbox, e, Some(&vm))),
    }
    match agent.status() {
        Ok(status) => Ok(Booted { vm, agent, status }),
        Err(e) => Err(failed(BootStep::ReadStatus, e, Some(&vm))),
    }
}

fn sandbox_exists(agent: &dyn AgentLink) -> bool {
    agent
        .status()
        .is_ok_and(|s| s.sandbox_ready || !s.containers.is_empty())
}

#[cfg(test)]
mod tests;
