//! Carrying out one action: each step is recorded on the container (its
//! status, kubelet's events) as it happens.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podvm_proto::HookAction;

use super::{PodSync, KILL_WAIT, MIN_GRACE};
use crate::console::say;
use crate::container::{Container, CreateFailure, START_ERROR_EXIT_CODE};
use crate::controller::actions::Action;
use crate::controller::input::{HookKind, Input};
use crate::controller::state::{KillReason, KillStage, Overdue, Phase, StopSignal};
use crate::controller::{Run, Runtime};
use crate::events::kubelet::PodEvent;
use crate::ids::random_id;

impl<R: Runtime> PodSync<R> {
    pub(super) fn execute(&mut self, action: Action) {
        match action {
            Action::Start { container } => self.start_run(container, 0),
            Action::Restart { container, run } => {
                if let Some(c) = self.containers.get(container) {
                    let id = random_id().unwrap_or_else(|_| format!("{:064x}", u64::from(run)));
                    c.begin_restart(id);
                    self.start_run(container, run);
                }
            }
            Action::RetryCreate { container, run } => self.start_run(container, run),
            Action::BackOff { container, delay } => self.back_off(container, delay),
            Action::Finish { container } => {
                if let (Some(c), Some(slot)) = (
                    self.containers.get(container),
                    self.state.containers.get_mut(container),
                ) {
                    c.finish();
                    slot.phase = Phase::Done;
                }
            }
            Action::BeginKill { container, reason } => self.begin_kill(container, reason),
            Action::Signal { container, signal } => self.send_signal(container, signal),
            Action::Abandon { container } => {
                if let (Some(c), Some(slot)) = (
                    self.containers.get(container),
                    self.state.containers.get_mut(container),
                ) {
                    say!("container {} did not end after SIGKILL", c.name());
                    slot.phase = Phase::Done;
                }
            }
            Action::StopPod { reason } => {
                let grace = self.policy.grace;
                self.begin_stop(reason, grace, false);
            }
        }
    }

    /// The last run ended and another follows after `delay`.
    fn back_off(&mut self, container: usize, delay: Duration) {
        let now = self.state.now;
        let pod = self.policy.pod.clone();
        let (Some(c), Some(slot)) = (
            self.containers.get(container).cloned(),
            self.state.containers.get_mut(container),
        ) else {
            return;
        };
        let Phase::Exited { run, .. } = slot.phase else {
            return;
        };
        c.start_failed_restarting();
        slot.backoff.advance(now);
        if delay.is_zero() {
            slot.phase = Phase::RestartDue { run };
            return;
        }
        slot.phase = Phase::BackingOff { run };
        c.enter_backoff(delay, &pod);
        self.schedule(delay, Input::BackOffExpired { container });
    }

    /// The grace period a kill for `reason` gets.
    fn kill_grace(&self, container: &Container, reason: KillReason) -> Duration {
        let probe_grace = |probe: &Option<podvm_proto::Probe>| {
            probe
                .as_ref()
                .and_then(|p| p.termination_grace_period_seconds)
                .map(Duration::from_secs)
        };
        let spec = &container.spec;
        let own = match reason {
            KillReason::Unhealthy(crate::controller::ProbeKind::Liveness) => {
                probe_grace(&spec.liveness_probe)
            }
            KillReason::Unhealthy(crate::controller::ProbeKind::Startup) => {
                probe_grace(&spec.startup_probe)
            }
            KillReason::Unhealthy(crate::controller::ProbeKind::Readiness)
            | KillReason::PostStartFailed
            | KillReason::PodStopping => None,
        };
        own.unwrap_or(self.policy.grace)
    }

    /// Starts killing a container's live run: its `Killing` event, then
    /// preStop (within the grace period) or straight to its turn for the
    /// stop signal; a forced stop sends SIGKILL at once.
    fn begin_kill(&mut self, container: usize, reason: KillReason) {
        let Some(c) = self.containers.get(container).cloned() else {
            return;
        };
        let Some(run) = self.state.containers[container].phase.live_run() else {
            return;
        };
        let now = Instant::now();
        let force = self.state.stop.is_some_and(|s| s.force);
        let deadline = match reason {
            KillReason::PodStopping => self.stop_deadline.unwrap_or(now),
            _ => {
                let grace = self.kill_grace(&c, reason);
                now.checked_add(grace).unwrap_or(now + KILL_WAIT)
            }
        };
        c.killing(reason);
        self.runtime.forget_probes(container, run);
        let grace_left = deadline.saturating_duration_since(now);
        let pre_stop = c.spec.lifecycle.pre_stop.clone();
        let stage = match pre_stop {
            Some(action) if !force && !grace_left.is_zero() => {
                self.spawn_hook(
                    container,
                    &c,
                    run,
                    HookKind::PreStop,
                    action,
                    Some(grace_left),
                );
                KillStage::PreStop
            }
            _ => KillStage::AwaitTurn,
        };
        self.state.containers[container].phase = Phase::Killing {
            run,
            reason,
            stage,
            overdue: Overdue::No,
        };
        let due = if force { now } else { deadline };
        self.set_kill_deadline(container, run, due);
    }

    /// Sends a stop signal to a container's live run.
    fn send_signal(&mut self, container: usize, signal: StopSignal) {
        let Some(c) = self.containers.get(container).cloned() else {
            return;
        };
        let force = self.state.stop.is_some_and(|s| s.force);
        let Phase::Killing {
            run,
            reason,
            overdue,
            ..
        } = self.state.containers[container].phase
        else {
            return;
        };
        self.runtime.signal(&c, signal);
        self.state.containers[container].phase = Phase::Killing {
            run,
            reason,
            stage: KillStage::Signalled(signal),
            overdue,
        };
        match signal {
            StopSignal::Term if !force => {
                // kubelet's minimum: the signal gets two seconds, whatever
                // preStop took.
                let now = Instant::now();
                let floor = now + MIN_GRACE;
                let due = self.kill_deadlines[container].map_or(floor, |d| d.max(floor));
                if Some(due) != self.kill_deadlines[container] {
                    self.set_kill_deadline(container, run, due);
                }
            }
            StopSignal::Term => {}
            StopSignal::Kill => self.schedule(KILL_WAIT, Input::KillWaitExpired { container, run }),
        }
    }

    /// Runs a hook of run `run` on a thread of its own; its end comes back
    /// as [`Input::HookDone`].
    fn spawn_hook(
        &self,
        container: usize,
        c: &Arc<Container>,
        run: u32,
        hook: HookKind,
        action: HookAction,
        limit: Option<Duration>,
    ) {
        let runtime = Arc::clone(&self.runtime);
        let inputs = self.inputs.clone();
        let target = Arc::clone(c);
        let spawned = std::thread::Builder::new()
            .name(format!("hook-{}", c.name()))
            .spawn(move || {
                let result = runtime.run_hook(&target, &action, limit);
                let _ = inputs.send(Input::HookDone {
                    container,
                    run,
                    hook,
                    result,
                });
            });
        if let Err(e) = spawned {
            let _ = self.inputs.send(Input::HookDone {
                container,
                run,
                hook,
                result: Err(format!("agent could not start a thread: {e}")),
            });
        }
    }

    /// Creates and starts run `run` of a container; a postStart hook
    /// follows, or it is running.
    fn start_run(&mut self, container: usize, run: u32) {
        let Some(c) = self.containers.get(container).map(Arc::clone) else {
            return;
        };
        let phase = self.launch(container, &c, run);
        let now = Instant::now();
        let slot = &mut self.state.containers[container];
        slot.phase = phase;
        match phase {
            Phase::Exited { exit_code, .. } => slot.last_exit = Some(exit_code),
            Phase::CreateFailed { .. } => {
                // Tried again after the container's back-off (10 s
                // doubling), its state `CreateContainerError` meanwhile.
                let delay = slot.backoff.delay(now).max(crate::backoff::INITIAL);
                slot.backoff.advance(now);
                self.schedule(delay, Input::CreateRetryExpired { container });
                return;
            }
            _ => {}
        }
        if let Phase::PostStart { .. } = phase {
            if let Some(action) = c.spec.lifecycle.post_start.clone() {
                self.spawn_hook(container, &c, run, HookKind::PostStart, action, None);
            }
        } else if let Phase::Running { .. } = phase {
            self.running(container, run);
        }
    }

    /// kubelet's steps for one run, each recorded on the container: image
    /// present, create, start; the started run goes to its waiter thread.
    /// Returns the container's phase after them.
    fn launch(&self, index: usize, c: &Container, run: u32) -> Phase {
        // The waiter first: a run that started must always be waited for.
        let (hand_over, handed) = mpsc::channel::<R::Run>();
        let inputs = self.inputs.clone();
        let waiter = std::thread::Builder::new()
            .name(format!("wait-{}", c.name()))
            .spawn(move || {
                if let Ok(started) = handed.recv() {
                    let exit = started.wait();
                    let _ = inputs.send(Input::ContainerExited {
                        container: index,
                        run,
                        exit,
                    });
                }
            });
        if let Err(e) = waiter {
            say!("cannot start the waiter of {}: {e}", c.name());
            c.set_create_error(CreateFailure::Runtime(format!(
                "agent could not start a thread: {e}"
            )));
            return Phase::CreateFailed { run };
        }
        c.image_present();
        let created = match self.runtime.create(c) {
            Ok(created) => created,
            Err(failure) => {
                say!(
                    "container {} could not be created: {}",
                    c.name(),
                    failure.message()
                );
                c.set_create_error(failure);
                return Phase::CreateFailed { run };
            }
        };
        c.created();
        match self.runtime.start(c, created, run) {
            Err(message) => {
                say!("container {} failed to start: {message}", c.name());
                c.set_start_error(message);
                Phase::Exited {
                    run,
                    exit_code: START_ERROR_EXIT_CODE,
                }
            }
            Ok(started) => {
                let post_start = c.spec.lifecycle.post_start.is_some();
                c.set_process_started(started.started_at(), started.info(), post_start);
                let _ = hand_over.send(started);
                if post_start {
                    Phase::PostStart { run }
                } else {
                    Phase::Running { run }
                }
            }
        }
    }

    /// Records a pod-level event of kubelet's.
    pub(super) fn record_pod_event(&self, event: PodEvent<'_>) {
        self.events
            .record(event.event_type(), event.reason(), event.message(), None);
    }
}
