//! The pod's probes: one [`podvm_probe::Prober`] per pod, whose thread
//! lives in the pod's network namespace (entered from the sandbox
//! holder's), so `httpGet`, `tcpSocket` and `grpc` need no route from
//! anywhere to the pod. Its reports become the sync loop's
//! [`Input::ProbeResult`]s and kubelet's `Unhealthy` / `ProbeWarning`
//! events; `exec` probes run in the container.

use std::fs::File;
use std::io;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};
use podvm_probe::{
    ExecOutcome, ExecRunner, Outcome, ProbeKind as Kind, ProbeReport, ProbeResult, Prober, RunKey,
    RunProbes,
};
use podvm_proto::{EventType, HttpGet};

use crate::container::Container;
use crate::controller::{Input, ProbeKind};
use crate::events::EventLog;
use crate::exec::run::run_in_container;

/// `exec` probes of one container.
struct ContainerExec(Arc<Container>);

impl ExecRunner for ContainerExec {
    fn exec(&self, command: &[String], timeout: Duration) -> ExecOutcome {
        match run_in_container(&self.0, command.to_vec(), timeout) {
            Ok(outcome) if outcome.timed_out => ExecOutcome::TimedOut,
            Ok(outcome) => ExecOutcome::Exited {
                code: outcome.exit_code.unwrap_or(137),
                output: outcome.output,
            },
            Err(e) => ExecOutcome::CouldNotRun(e.to_string()),
        }
    }
}

fn kind(probe: Kind) -> ProbeKind {
    match probe {
        Kind::Startup => ProbeKind::Startup,
        Kind::Liveness => ProbeKind::Liveness,
        Kind::Readiness => ProbeKind::Readiness,
    }
}

/// See the module documentation.
pub struct PodProbes {
    prober: Mutex<Option<Prober>>,
    events: Arc<EventLog>,
}

impl PodProbes {
    /// Starts the prober of pod `name` in the network namespace of the
    /// sandbox holder `holder_pid`; events go to `events`.
    pub fn start(name: &str, holder_pid: i32, events: Arc<EventLog>) -> io::Result<PodProbes> {
        // Opened now, so it is the holder's namespace whatever happens to
        // the PID while the prober's thread starts.
        let ns = File::open(format!("/proc/{holder_pid}/ns/net"))?;
        let prober = Prober::start(name, move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
        })?;
        Ok(PodProbes {
            prober: Mutex::new(Some(prober)),
            events,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Prober) -> T) -> Option<T> {
        self.prober
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(f)
    }

    /// Starts the probes of run `run` of the container at `index`; results
    /// go to `inputs`.
    pub fn watch(&self, index: usize, container: &Arc<Container>, run: u32, inputs: Sender<Input>) {
        let spec = &container.spec;
        let probes = RunProbes {
            startup: spec.startup_probe.clone(),
            liveness: spec.liveness_probe.clone(),
            readiness: spec.readiness_probe.clone(),
        };
        if probes.startup.is_none() && probes.liveness.is_none() && probes.readiness.is_none() {
            return;
        }
        let events = Arc::clone(&self.events);
        let name = container.name().to_string();
        let inputs = Mutex::new(inputs);
        let report = move |_: RunKey, report: ProbeReport| {
            if let Some(event) = report.event() {
                events.record(
                    EventType::Warning,
                    event.reason.as_str(),
                    event.message,
                    Some(&name),
                );
            }
            if let ProbeReport::Result {
                kind: probe,
                result,
            } = report
            {
                let _ = inputs.lock().unwrap_or_else(PoisonError::into_inner).send(
                    Input::ProbeResult {
                        container: index,
                        run,
                        probe: kind(probe),
                        success: result == ProbeResult::Success,
                    },
                );
            }
        };
        let exec = Arc::new(ContainerExec(Arc::clone(container)));
        self.with(|p| {
            p.watch(
                RunKey {
                    container: index,
                    run,
                },
                probes,
                exec,
                Arc::new(report),
            )
        });
    }

    /// Stops the probes of run `run` of the container at `index`.
    pub fn forget(&self, index: usize, run: u32) {
        self.with(|p| {
            p.forget(RunKey {
                container: index,
                run,
            })
        });
    }

    /// An `httpGet` hook's request from the pod's network namespace; the
    /// error is the failure's text.
    pub fn http_get(&self, get: &HttpGet, timeout: Duration) -> Result<(), String> {
        match self.with(|p| p.hook_http_get(get, timeout)) {
            Some(Outcome::Success | Outcome::Warning(_)) => Ok(()),
            Some(Outcome::Failure(m) | Outcome::Errored(m)) => Err(m),
            None => Err("the pod is stopping".into()),
        }
    }

    /// Stops every probe and the prober's thread.
    pub fn shutdown(&self) {
        let prober = self
            .prober
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(prober);
    }
}
