//! The owner process (`podvm __owner`): one per pod, started by `apply`
//! (or by any later command that finds the pod without one), detached from
//! the terminal. It holds the owner lock for life, boots the pod or takes
//! over its running VM, keeps the record current from the agent's event
//! watch, notices at once when the VM process ends and records the pod
//! `Failed` with the reason and the end of the guest console, and on
//! SIGTERM (what `delete` sends, after writing its grace period) stops the
//! containers, powers the VM off and removes everything.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::boot::{boot, connect_and_create, BootError};
use super::keeper::Keeper;
use super::lifecycle::{FailureReason, Lifecycle};
use super::link::{AgentDialer, AgentLink};
use super::locks::{self, OWNER_LOCK};
use super::plan::LaunchPlan;
use super::teardown::tear_down;
use super::vm_exit::{self, VmExit};
use crate::hypervisor::{Hypervisor, HypervisorKind, TrackedProcess, VmRecord};
use crate::state::{write_atomic, StateDir};

/// The owner's identity (pid and start time), in the pod's folder.
pub const OWNER_FILE: &str = "owner.json";
/// Lines of guest console quoted when the VM ends.
const CONSOLE_LINES: usize = 20;

/// Chooses a VM backend (the seam tests replace).
pub type SelectHypervisor = dyn Fn(HypervisorKind) -> Result<Box<dyn Hypervisor>> + Send + Sync;

/// What an owner is built from.
pub struct OwnerDeps {
    pub hypervisor: Box<SelectHypervisor>,
    pub dialer: Arc<dyn AgentDialer>,
    /// Whether SIGTERM/SIGINT are a delete request (the owner process);
    /// off for owners run on a thread in tests.
    pub stop_on_signals: bool,
}

enum Msg {
    VmEnded(VmExit),
    Delete,
}

struct Running {
    vm: VmRecord,
    agent: Arc<dyn AgentLink>,
}

/// Owns the pod `namespace/name` until it fails or is deleted. Returns at
/// once when another owner holds the pod.
pub fn run(state: &StateDir, namespace: &str, name: &str, deps: &OwnerDeps) -> Result<()> {
    let dir = state.pod_dir(namespace, name);
    let Some(_lock) = locks::take(&dir.join(OWNER_LOCK), false)? else {
        eprintln!("podvm owner: {namespace}/{name} already has an owner");
        return Ok(());
    };
    let me = TrackedProcess::of_pid("owner", std::process::id())?;
    write_atomic(
        &dir.join(OWNER_FILE),
        &serde_json::to_vec(&me).context("cannot encode the owner record")?,
    )?;
    let (tx, rx) = channel();
    if deps.stop_on_signals {
        forward_stop_signals(tx.clone())?;
    }
    let keeper = Arc::new(Keeper::new(state.clone(), state.load(namespace, name)?));
    let running = match keeper.snapshot().lifecycle {
        Lifecycle::Failed { .. } => return Ok(()),
        Lifecycle::Deleting => {
            let vm = keeper.snapshot().vm;
            return tear_down(state, &dir, &keeper, vm.as_ref(), None);
        }
        Lifecycle::Creating | Lifecycle::Running => establish(&dir, &keeper, deps)?,
    };
    let Some(Running { vm, agent }) = running else {
        return Ok(());
    };
    let Some(main) = vm.processes.last().cloned() else {
        keeper.fail(
            FailureReason::VmLost,
            "the VM record names no process".into(),
        )?;
        return Ok(());
    };
    let vm_tx = tx.clone();
    let (exit_tx, exit_rx) = channel();
    if vm_exit::watch(&main, exit_tx).is_err() {
        let _ = vm_tx.send(Msg::VmEnded(VmExit::Gone));
    } else {
        std::thread::spawn(move || {
            if let Ok(end) = exit_rx.recv() {
                let _ = vm_tx.send(Msg::VmEnded(end));
            }
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (keeper, stop, agent) = (Arc::clone(&keeper), Arc::clone(&stop), Arc::clone(&agent));
        let (dialer, vm) = (Arc::clone(&deps.dialer), vm.clone());
        std::thread::Builder::new()
            .name("event-watch".into())
            .spawn(move || {
                let redial = || {
                    vm.is_running()
                        .then(|| {
                            dialer
                                .dial(&vm, Instant::now() + Duration::from_secs(10))
                                .ok()
                        })
                        .flatten()
                };
                super::watch::run(&keeper, agent, &redial, &stop);
            })
            .context("starting the event watch")?
    };
    let result = match rx.recv() {
        Ok(Msg::VmEnded(end)) => {
            stop.store(true, Ordering::SeqCst);
            let console = vm.console_tail(CONSOLE_LINES);
            let mut message = format!("the pod's VM process ({}) {end}", main.name);
            if !console.is_empty() {
                message.push_str(&format!("; guest console (last lines):\n{console}"));
            }
            eprintln!("podvm owner: {message}");
            keeper.fail(FailureReason::VmExited, message)?;
            vm.stop(Duration::ZERO);
            Ok(())
        }
        Ok(Msg::Delete) | Err(_) => {
            stop.store(true, Ordering::SeqCst);
            tear_down(state, &dir, &keeper, Some(&vm), Some(&*agent))
        }
    };
    // The watch returns within one long poll; the process ends either way.
    drop(watcher);
    result
}

/// Boots the pod or takes over its VM; `None` when it failed (recorded).
fn establish(dir: &Path, keeper: &Keeper, deps: &OwnerDeps) -> Result<Option<Running>> {
    let plan = LaunchPlan::load(dir)?;
    let record = keeper.snapshot();
    let booted = match (&record.vm, &record.lifecycle) {
        (None, _) => {
            let hv = match (deps.hypervisor)(plan.hypervisor) {
                Ok(hv) => hv,
                Err(e) => {
                    keeper.fail(FailureReason::VmStartFailed, format!("{e:#}"))?;
                    return Ok(None);
                }
            };
            let mut record_vm = |vm: &VmRecord| keeper.update(|r| r.vm = Some(vm.clone()));
            boot(&plan, hv.as_ref(), &*deps.dialer, &mut record_vm)
        }
        (Some(vm), _) if !vm.is_running() => {
            vm.stop(Duration::ZERO);
            keeper.fail(
                FailureReason::VmLost,
                "the VM was gone when a new owner took the pod over".into(),
            )?;
            return Ok(None);
        }
        (Some(vm), Lifecycle::Creating) => connect_and_create(&plan, vm.clone(), &*deps.dialer),
        (Some(vm), _) => {
            let deadline = Instant::now() + Duration::from_secs(plan.boot_timeout_secs);
            match deps.dialer.dial(vm, deadline) {
                Ok(agent) => {
                    return Ok(Some(Running {
                        vm: vm.clone(),
                        agent,
                    }))
                }
                Err(e) => {
                    vm.stop(Duration::ZERO);
                    keeper.fail(FailureReason::AgentUnreachable, format!("{e:#}"))?;
                    return Ok(None);
                }
            }
        }
    };
    match booted {
        Ok(b) => {
            keeper.update(|r| {
                r.vm = Some(b.vm.clone());
                r.last_status = Some(b.status.clone());
                r.lifecycle = Lifecycle::Running;
            })?;
            Ok(Some(Running {
                vm: b.vm,
                agent: b.agent,
            }))
        }
        Err(BootError {
            reason, message, ..
        }) => {
            eprintln!("podvm owner: {message}");
            keeper.update(|r| {
                r.vm = None;
                r.lifecycle = Lifecycle::Failed { reason, message };
            })?;
            Ok(None)
        }
    }
}

/// SIGTERM and SIGINT become a delete request.
fn forward_stop_signals(tx: Sender<Msg>) -> Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = tx.send(Msg::Delete);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
