//! Running a [`Machine`]: one thread per vCPU; the first stop reported
//! ends the VM, and the other vCPUs are kicked out of `KVM_RUN` with a
//! signal and joined (or, if one will not answer, left behind holding the
//! VM alive so its memory stays valid).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use vmm_sys_util::signal::{unblock_signal, Killable};

use super::{Error, Machine, Result};
use crate::probe::runner::kick_signal;
use crate::stop::StopReason;

/// How long stopped vCPU threads get to leave `KVM_RUN`.
const STOP_GRACE: Duration = Duration::from_millis(500);
/// Interval between kicks.
const KICK_INTERVAL: Duration = Duration::from_millis(5);

impl Machine {
    /// Starts the vCPUs and waits until the guest stops or crashes.
    pub fn run(self) -> Result<StopReason> {
        let signal = kick_signal().map_err(Error::Kvm)?;
        let filters = self.seccomp;
        let devices = self
            .event_loop
            .spawn_filtered(filters.as_ref().map(|f| f.devices.clone()))
            .map_err(|e| Error::Device("event loop", e.to_string()))?;
        // Each vCPU thread reports whether it installed its filter.
        let (ready_tx, ready_rx) = mpsc::channel::<std::result::Result<(), String>>();
        let should_stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<JoinHandle<()>> = Vec::with_capacity(self.vcpus.len());
        for (id, vcpu) in self.vcpus.into_iter().enumerate() {
            let flag = Arc::clone(&should_stop);
            let vm = Arc::clone(&self.vm);
            let filter = filters.as_ref().map(|f| f.vcpu.clone());
            let ready = ready_tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("vcpu{id}"))
                .spawn(move || {
                    // With the signal blocked the kick is lost and the
                    // runner leaves this thread behind; nothing else breaks.
                    let _ = unblock_signal(signal);
                    if let Some(filter) = &filter {
                        if let Err(e) = crate::seccomp::install(filter) {
                            let _ = ready.send(Err(e.to_string()));
                            return;
                        }
                    }
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    vcpu.run(&flag);
                    drop(vm);
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    stop_threads(threads, &should_stop, signal);
                    devices.stop();
                    return Err(crate::vstate::Error::SpawnThread(e).into());
                }
            }
        }
        drop(ready_tx);
        let started = threads.len();
        let failed = ready_rx
            .iter()
            .take(started)
            .find_map(std::result::Result::err);
        if let Some(e) = failed {
            stop_threads(threads, &should_stop, signal);
            devices.stop();
            return Err(Error::Device("vCPU seccomp filter", e));
        }
        if let Some(filters) = &filters {
            // Everything is open and every thread runs: from here the main
            // thread only waits, kicks, joins and tears down.
            if let Err(e) = crate::seccomp::install(&filters.main) {
                stop_threads(threads, &should_stop, signal);
                devices.stop();
                return Err(e.into());
            }
            log::debug!("seccomp filters installed on every VMM thread");
        }
        // All senders live in devices and vCPUs; vCPU threads that all end
        // without a report leave the devices' senders, so wait with a
        // timeout and check the threads.
        let reason = loop {
            match self.stop_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(reason) => break Ok(reason),
                Err(_) if threads.iter().all(|t| t.is_finished()) => {
                    break self.stop_rx.try_recv().map_err(|_| Error::NoStopReason)
                }
                Err(_) => {}
            }
        };
        stop_threads(threads, &should_stop, signal);
        devices.stop();
        if let Ok(reason) = &reason {
            log::info!("VM stopped: {reason}");
        }
        reason
    }
}

/// Sets the stop flag, kicks every running vCPU thread until it leaves
/// `KVM_RUN`, and joins those that did within [`STOP_GRACE`].
fn stop_threads(threads: Vec<JoinHandle<()>>, should_stop: &AtomicBool, signal: libc::c_int) {
    should_stop.store(true, Ordering::SeqCst);
    let give_up = Instant::now() + STOP_GRACE;
    while Instant::now() < give_up && threads.iter().any(|t| !t.is_finished()) {
        for thread in threads.iter().filter(|t| !t.is_finished()) {
            // The handle is not joined yet, so the pthread is valid; a
            // failed kill only means the thread just exited.
            let _ = thread.kill(signal);
        }
        thread::sleep(KICK_INTERVAL);
    }
    for thread in threads {
        if thread.is_finished() {
            if thread.join().is_err() {
                log::error!("a vCPU thread panicked");
            }
        } else {
            log::warn!("a vCPU thread did not leave KVM_RUN; leaving it behind");
        }
    }
}
