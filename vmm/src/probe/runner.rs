//! Runs one probe guest on its own thread under a deadline.
//!
//! The vCPU thread owns the whole VM. The caller waits for its report; at
//! the deadline it sets a stop flag and kicks the thread out of `KVM_RUN`
//! with a real-time signal (repeated, since a kick that lands just before
//! the thread re-enters `KVM_RUN` is lost). A thread that still does not
//! answer is abandoned, VM and all, so the probe always returns.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use kvm_ioctls::{Kvm, VcpuExit, VcpuFd};
use vmm_sys_util::signal::{register_signal_handler, unblock_signal, Killable, SIGRTMIN};

use super::guest_code::{GuestProgram, MARKER_PORT};
use super::guest_vm::ProbeVm;
use super::outcome::{CpuState, GuestOutcome};
use super::vcpu_setup;
use crate::error::{Error, Result};

/// The kick signal is `SIGRTMIN() + KICK_SIGNAL_OFFSET`. Its handler does
/// nothing; the signal only makes `KVM_RUN` return EINTR.
pub const KICK_SIGNAL_OFFSET: libc::c_int = 0;
/// How long to keep kicking a vCPU thread after the deadline.
const KICK_GRACE: Duration = Duration::from_millis(500);
/// Interval between kicks.
const KICK_INTERVAL: Duration = Duration::from_millis(10);
/// The stable KVM API version.
const KVM_API_VERSION: i32 = 12;

/// Opens the KVM device and checks its API version.
pub fn open_kvm(dev: &Path) -> Result<Kvm> {
    let open_error = |source| Error::OpenKvm {
        path: dev.to_path_buf(),
        source,
    };
    let c_path = CString::new(dev.as_os_str().as_bytes())
        .map_err(|_| open_error(vmm_sys_util::errno::Error::new(libc::EINVAL)))?;
    let kvm = Kvm::new_with_path(c_path).map_err(open_error)?;
    match kvm.get_api_version() {
        KVM_API_VERSION => Ok(kvm),
        other => Err(Error::ApiVersion(other)),
    }
}

/// Builds a VM for `program`, runs it until its first meaningful exit, and
/// reports what happened. Errors only when KVM cannot be used at all.
pub fn run_guest(kvm: &Kvm, program: GuestProgram, deadline: Duration) -> Result<GuestOutcome> {
    let mut probe_vm = ProbeVm::create(kvm, program)?;
    if let Err(rejected) = vcpu_setup::configure(kvm, &probe_vm.vcpu) {
        return Ok(GuestOutcome::SetupRejected(rejected));
    }
    let signal = kick_signal()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    let handle = thread::Builder::new()
        .name("podvm-kvm-probe".into())
        .spawn(move || {
            // Inherited masks may block the kick; failing here only means
            // the watchdog will have to abandon the thread.
            let _ = unblock_signal(signal);
            let report = run_vcpu(&mut probe_vm.vcpu, &thread_stop);
            let _ = tx.send(report);
            drop(probe_vm);
        })
        .map_err(Error::SpawnVcpuThread)?;
    let started = Instant::now();
    match rx.recv_timeout(deadline) {
        Ok(report) => Ok(finish(handle, report, started)),
        Err(RecvTimeoutError::Disconnected) => Ok(join_panicked(handle)),
        Err(RecvTimeoutError::Timeout) => Ok(kick(handle, &rx, &stop, signal, started)),
    }
}

/// What the vCPU thread reports.
enum Report {
    /// The guest exited on its own.
    Done(GuestOutcome),
    /// The thread saw the stop flag (it was kicked at the deadline).
    Stopped,
}

/// Joins a thread that has reported and turns its report into an outcome.
fn finish(handle: JoinHandle<()>, report: Report, started: Instant) -> GuestOutcome {
    let _ = handle.join();
    match report {
        Report::Done(outcome) => outcome,
        Report::Stopped => GuestOutcome::Timeout {
            waited: started.elapsed(),
            abandoned: false,
        },
    }
}

/// The vCPU thread hung up without reporting: it panicked.
fn join_panicked(handle: JoinHandle<()>) -> GuestOutcome {
    let why = match handle.join() {
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into()),
        Ok(()) => "exited without a report".into(),
    };
    GuestOutcome::RunFailed(format!("vCPU thread failed: {why}"))
}

/// Deadline passed: stop the vCPU thread, or give up on it.
fn kick(
    handle: JoinHandle<()>,
    rx: &mpsc::Receiver<Report>,
    stop: &AtomicBool,
    signal: libc::c_int,
    started: Instant,
) -> GuestOutcome {
    stop.store(true, Ordering::SeqCst);
    let give_up = Instant::now() + KICK_GRACE;
    while Instant::now() < give_up {
        // The thread is alive until it has sent (handle not yet joined), so
        // its pthread handle is valid; a failed kill only means it is gone.
        let _ = handle.kill(signal);
        match rx.recv_timeout(KICK_INTERVAL) {
            Ok(report) => return finish(handle, report, started),
            Err(RecvTimeoutError::Disconnected) => return join_panicked(handle),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    // Dropping the handle detaches the thread; it keeps the VM alive.
    drop(handle);
    GuestOutcome::Timeout {
        waited: started.elapsed(),
        abandoned: true,
    }
}

/// Signal handler for the kick: nothing to do, interrupting is the point.
extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs the kick handler once per process and returns the signal.
pub(crate) fn kick_signal() -> Result<libc::c_int> {
    static INSTALLED: OnceLock<std::result::Result<libc::c_int, vmm_sys_util::errno::Error>> =
        OnceLock::new();
    (*INSTALLED.get_or_init(|| {
        let signal = SIGRTMIN() + KICK_SIGNAL_OFFSET;
        register_signal_handler(signal, on_kick).map(|()| signal)
    }))
    .map_err(Error::KickSignal)
}

/// A vCPU exit reduced to plain data (so the vCPU can be queried after).
enum Exit {
    Marker(u8),
    Access(String),
    Shutdown,
    Internal,
    Other(String),
    Interrupted,
    Failed(String),
}

/// Runs the vCPU until an exit that decides the outcome, or until stopped.
fn run_vcpu(vcpu: &mut VcpuFd, stop: &AtomicBool) -> Report {
    loop {
        if stop.load(Ordering::SeqCst) {
            return Report::Stopped;
        }
        let exit = classify(vcpu.run());
        if matches!(exit, Exit::Interrupted) {
            continue;
        }
        let suberror = match exit {
            Exit::Internal => internal_suberror(vcpu),
            _ => 0,
        };
        let state = cpu_state(vcpu);
        let outcome = match exit {
            Exit::Marker(guest_cs) => GuestOutcome::Marker { guest_cs, state },
            Exit::Access(what) => GuestOutcome::OtherAccess { what, state },
            Exit::Shutdown => GuestOutcome::Shutdown { state },
            Exit::Internal => GuestOutcome::InternalError { suberror, state },
            Exit::Other(exit) => GuestOutcome::OtherExit { exit, state },
            Exit::Failed(e) => GuestOutcome::RunFailed(e),
            Exit::Interrupted => continue,
        };
        return Report::Done(outcome);
    }
}

fn classify(result: std::result::Result<VcpuExit<'_>, vmm_sys_util::errno::Error>) -> Exit {
    match result {
        Ok(VcpuExit::IoOut(MARKER_PORT, data)) => Exit::Marker(data.first().copied().unwrap_or(0)),
        Ok(VcpuExit::IoOut(port, _)) => Exit::Access(format!("out to port {port:#x}")),
        Ok(VcpuExit::IoIn(port, _)) => Exit::Access(format!("in from port {port:#x}")),
        Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Access(format!("MMIO write to {addr:#x}")),
        Ok(VcpuExit::MmioRead(addr, _)) => Exit::Access(format!("MMIO read from {addr:#x}")),
        Ok(VcpuExit::Shutdown) => Exit::Shutdown,
        Ok(VcpuExit::InternalError) => Exit::Internal,
        Ok(VcpuExit::Intr) => Exit::Interrupted,
        Ok(VcpuExit::Hlt) => Exit::Other("KVM_EXIT_HLT".into()),
        Ok(VcpuExit::FailEntry(reason, cpu)) => Exit::Other(format!(
            "KVM_EXIT_FAIL_ENTRY (hardware reason {reason:#x}, cpu {cpu})"
        )),
        Ok(other) => Exit::Other(format!("{other:?}")),
        Err(e) if matches!(e.errno(), libc::EINTR | libc::EAGAIN) => Exit::Interrupted,
        Err(e) => Exit::Failed(e.to_string()),
    }
}

/// Reads RIP and CS; `None` if KVM refuses.
fn cpu_state(vcpu: &VcpuFd) -> Option<CpuState> {
    let regs = vcpu.get_regs().ok()?;
    let sregs = vcpu.get_sregs().ok()?;
    Some(CpuState {
        rip: regs.rip,
        cs_selector: sregs.cs.selector,
        cs_dpl: sregs.cs.dpl,
    })
}

/// `kvm_run.internal.suberror` after a `KVM_EXIT_INTERNAL_ERROR`.
fn internal_suberror(vcpu: &mut VcpuFd) -> u32 {
    let run = vcpu.get_kvm_run();
    // SAFETY: called only right after KVM_RUN returned
    // KVM_EXIT_INTERNAL_ERROR, for which the kernel fills the `internal`
    // member of the exit union; it is plain integers.
    unsafe { run.__bindgen_anon_1.internal.suberror }
}
