//! The probe workers of one container run (kubelet's `prober.worker`):
//! the startup probe first; liveness and readiness once it succeeded (at
//! once without one); the first attempt after `initialDelaySeconds`
//! (counted from the run's start), then one every `periodSeconds`, each
//! bounded by `timeoutSeconds`. A liveness or startup failure ends the
//! run's probing: the agent restarts the container under a new run.

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use podvm_proto::lifecycle::Probe;
use tokio::time::{interval_at, sleep_until, Instant, MissedTickBehavior};

use crate::threshold::Threshold;
use crate::timing::Timing;
use crate::{action, ExecRunner, Outcome, ProbeKind, ProbeReport, ProbeResult};

/// One run of one container: its index in the pod and a run number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunKey {
    pub container: usize,
    pub run: u32,
}

/// The probes of a container, with Kubernetes' defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunProbes {
    pub startup: Option<Probe>,
    pub liveness: Option<Probe>,
    pub readiness: Option<Probe>,
}

/// Where reports go. Called on the prober's thread, one report at a time:
/// it should hand the report on without waiting (e.g. an unbounded
/// channel) and must not call `probe_once`/`hook_http_get`; `watch` and
/// `forget` are fine.
pub type ReportFn = Arc<dyn Fn(RunKey, ProbeReport) + Send + Sync>;

/// Lets reports through until closed; closing waits for a report being
/// delivered on another thread.
pub(crate) struct Gate {
    open: AtomicBool,
    delivering: Mutex<()>,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Gate {
            open: AtomicBool::new(true),
            delivering: Mutex::new(()),
        }
    }

    /// Closes the gate. Unless `inside` (called from the prober's thread,
    /// where no other delivery can be under way), waits for a delivery in
    /// progress to end.
    pub(crate) fn close(&self, inside: bool) {
        self.open.store(false, Ordering::SeqCst);
        if !inside {
            drop(
                self.delivering
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
        }
    }
}

/// What a run's workers need.
pub(crate) struct RunContext {
    pub(crate) key: RunKey,
    pub(crate) report: ReportFn,
    pub(crate) gate: Arc<Gate>,
    pub(crate) exec: Arc<dyn ExecRunner>,
    pub(crate) timing: Timing,
    pub(crate) started: Instant,
}

impl RunContext {
    fn send(&self, report: ProbeReport) {
        let _delivering = self
            .gate
            .delivering
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.gate.open.load(Ordering::SeqCst) {
            (self.report)(self.key, report);
        }
    }
}

/// How a worker's loop ended.
enum End {
    /// The startup probe succeeded.
    Started,
    /// A liveness or startup probe failed.
    Failed,
}

/// Runs all workers of one run until they are done.
pub(crate) async fn run(ctx: RunContext, probes: RunProbes) {
    if let Some(startup) = &probes.startup {
        if let End::Failed = probe_loop(&ctx, ProbeKind::Startup, startup).await {
            return;
        }
    }
    if probes.liveness.is_none() && probes.readiness.is_none() {
        return;
    }
    let liveness = async {
        match &probes.liveness {
            Some(probe) => probe_loop(&ctx, ProbeKind::Liveness, probe).await,
            None => pending().await,
        }
    };
    let readiness = async {
        match &probes.readiness {
            Some(probe) => probe_loop(&ctx, ProbeKind::Readiness, probe).await,
            None => pending().await,
        }
    };
    tokio::select! {
        _ = liveness => {}
        _ = readiness => {}
    }
}

/// One worker: probes until its result ends it (never, for readiness).
async fn probe_loop(ctx: &RunContext, kind: ProbeKind, probe: &Probe) -> End {
    sleep_until(ctx.started + ctx.timing.seconds(probe.initial_delay_seconds)).await;
    let period = ctx.timing.seconds(probe.period_seconds.max(1));
    let timeout = ctx.timing.seconds(probe.timeout_seconds.max(1));
    let mut threshold = Threshold::new(kind, probe.success_threshold, probe.failure_threshold);
    let mut ticks = interval_at(Instant::now(), period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = match action::run_with_retries(&probe.action, timeout, &ctx.exec).await {
            Outcome::Success => ProbeResult::Success,
            Outcome::Warning(message) => {
                ctx.send(ProbeReport::Warning { kind, message });
                ProbeResult::Success
            }
            Outcome::Failure(message) => {
                ctx.send(ProbeReport::Failed { kind, message });
                ProbeResult::Failure
            }
            Outcome::Errored(message) => {
                ctx.send(ProbeReport::Errored { kind, message });
                continue;
            }
        };
        let Some(changed) = threshold.observe(result) else {
            continue;
        };
        ctx.send(ProbeReport::Result {
            kind,
            result: changed,
        });
        match (kind, changed) {
            (ProbeKind::Startup, ProbeResult::Success) => return End::Started,
            (ProbeKind::Startup | ProbeKind::Liveness, ProbeResult::Failure) => return End::Failed,
            _ => {}
        }
    }
}
