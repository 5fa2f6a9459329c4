//! Applying one input to the pod's state. An input about a run that is
//! not the live one (or a timer for what no longer waits for it) is stale
//! and changes nothing. What follows from an input is for the next
//! [`compute_actions`](crate::controller::actions::compute_actions).

use std::time::{Duration, Instant};

use super::{PodSync, KILL_WAIT};
use crate::console::say;
use crate::controller::input::{HookKind, Input, ProbeKind};
use crate::controller::state::{KillReason, KillStage, Overdue, Phase, Stop, StopReason};
use crate::controller::Runtime;
use crate::events::kubelet::PodEvent;

impl<R: Runtime> PodSync<R> {
    /// Applies an input to the pod's state.
    pub fn handle(&mut self, input: Input) {
        match input {
            Input::ContainerExited {
                container,
                run,
                exit,
            } => self.exited(container, run, &exit),
            Input::StopRequested { grace, force } => {
                self.begin_stop(StopReason::Requested, grace, force);
            }
            Input::BackOffExpired { container } => {
                if let Some(slot) = self.state.containers.get_mut(container) {
                    if let Phase::BackingOff { run } = slot.phase {
                        slot.phase = Phase::RestartDue { run };
                    }
                }
            }
            Input::CreateRetryExpired { container } => {
                if let Some(slot) = self.state.containers.get_mut(container) {
                    if let Phase::CreateFailed { run } = slot.phase {
                        slot.phase = Phase::CreateRetryDue { run };
                    }
                }
            }
            Input::HookDone {
                container,
                run,
                hook,
                result,
            } => self.hook_done(container, run, hook, result),
            Input::ProbeResult {
                container,
                run,
                probe,
                success,
            } => self.probe_result(container, run, probe, success),
            Input::KillDeadline { container, run } => {
                if let Some(slot) = self.state.containers.get_mut(container) {
                    if let Phase::Killing {
                        run: live, overdue, ..
                    } = &mut slot.phase
                    {
                        if *live == run && *overdue == Overdue::No {
                            *overdue = Overdue::Kill;
                        }
                    }
                }
            }
            Input::KillWaitExpired { container, run } => {
                if let Some(slot) = self.state.containers.get_mut(container) {
                    if let Phase::Killing {
                        run: live,
                        stage: KillStage::Signalled(_),
                        overdue,
                        ..
                    } = &mut slot.phase
                    {
                        if *live == run {
                            *overdue = Overdue::GiveUp;
                        }
                    }
                }
            }
            Input::ActiveDeadline => {
                if self.state.stop.is_none() {
                    self.record_pod_event(PodEvent::DeadlineExceeded);
                    self.begin_stop(StopReason::DeadlineExceeded, self.policy.grace, false);
                }
            }
            Input::CheckVolumes => {
                if self.state.stop.is_some() {
                    return;
                }
                match self.runtime.volume_over_limit() {
                    Some(message) => {
                        self.record_pod_event(PodEvent::Evicted { message: &message });
                        self.outcome.update(|o| o.message = Some(message.clone()));
                        // kubelet evicts with no grace period: no preStop,
                        // the stop signal, SIGKILL after the minimum.
                        self.begin_stop(StopReason::Evicted, Duration::ZERO, false);
                    }
                    None => {
                        if let Some(every) = self.policy.volume_check {
                            self.schedule(every, Input::CheckVolumes);
                        }
                    }
                }
            }
        }
    }

    /// Run `run` of a container ended.
    fn exited(&mut self, container: usize, run: u32, exit: &crate::container::state::RunExit) {
        let (Some(c), Some(slot)) = (
            self.containers.get(container),
            self.state.containers.get_mut(container),
        ) else {
            return;
        };
        if slot.phase.live_run() != Some(run) {
            say!("ignoring the end of run {run} of {}: not running", c.name());
            return;
        }
        let deadline_exceeded = self
            .state
            .stop
            .is_some_and(|s| s.reason == StopReason::DeadlineExceeded);
        let message = self.runtime.termination_message(c, exit);
        c.set_exited(exit, message, deadline_exceeded);
        slot.phase = Phase::Exited {
            run,
            exit_code: exit.code,
        };
        slot.last_exit = Some(exit.code);
        slot.started = false;
        slot.kill_requested = None;
        self.clear_kill_deadline(container);
        self.runtime.forget_probes(container, run);
    }

    /// A hook of run `run` ended.
    fn hook_done(
        &mut self,
        container: usize,
        run: u32,
        hook: HookKind,
        result: Result<(), String>,
    ) {
        let (Some(c), Some(slot)) = (
            self.containers.get(container).cloned(),
            self.state.containers.get_mut(container),
        ) else {
            return;
        };
        if slot.phase.live_run() != Some(run) {
            return;
        }
        if let Err(message) = &result {
            c.hook_failed(hook, message);
        }
        match (hook, slot.phase, result) {
            (HookKind::PostStart, Phase::PostStart { .. }, Ok(())) => {
                slot.phase = Phase::Running { run };
                c.post_start_done();
                self.running(container, run);
            }
            (HookKind::PostStart, Phase::PostStart { .. }, Err(_)) => {
                slot.kill_requested = Some(KillReason::PostStartFailed);
            }
            (
                HookKind::PreStop,
                Phase::Killing {
                    stage: KillStage::PreStop,
                    reason,
                    overdue,
                    ..
                },
                _,
            ) => {
                slot.phase = Phase::Killing {
                    run,
                    reason,
                    stage: KillStage::AwaitTurn,
                    overdue,
                };
            }
            _ => {}
        }
    }

    /// Run `run` of a container passed its postStart hook: its probes
    /// start; without a startup probe it has started.
    pub(super) fn running(&mut self, container: usize, run: u32) {
        let Some(c) = self.containers.get(container).cloned() else {
            return;
        };
        self.runtime
            .watch_probes(container, &c, run, self.inputs.clone());
        if c.spec.startup_probe.is_none() {
            self.started(container);
        }
    }

    /// A container's live run started (postStart over, startup probe
    /// passed); without a readiness probe it is ready.
    fn started(&mut self, container: usize) {
        let (Some(c), Some(slot)) = (
            self.containers.get(container),
            self.state.containers.get_mut(container),
        ) else {
            return;
        };
        slot.started = true;
        slot.ever_started = true;
        c.set_started(true);
        if c.spec.readiness_probe.is_none() {
            c.set_ready(true);
        }
    }

    /// A probe of run `run` changed its result.
    fn probe_result(&mut self, container: usize, run: u32, probe: ProbeKind, success: bool) {
        let (Some(c), Some(slot)) = (
            self.containers.get(container).cloned(),
            self.state.containers.get_mut(container),
        ) else {
            return;
        };
        if !matches!(slot.phase, Phase::Running { run: live } if live == run) {
            return;
        }
        match (probe, success) {
            (ProbeKind::Startup, true) => self.started(container),
            (ProbeKind::Readiness, ready) => c.set_ready(ready && slot.started),
            (ProbeKind::Liveness, true) => {}
            (ProbeKind::Startup | ProbeKind::Liveness, false) => {
                slot.kill_requested = Some(KillReason::Unhealthy(probe));
            }
        }
    }

    /// The kill of run `run` of a container must have ended by `due`
    /// (replacing an earlier deadline and its timer).
    pub(super) fn set_kill_deadline(&mut self, container: usize, run: u32, due: Instant) {
        self.clear_kill_deadline(container);
        self.kill_deadlines[container] = Some(due);
        self.schedule_at(due, Input::KillDeadline { container, run });
    }

    fn clear_kill_deadline(&mut self, container: usize) {
        self.kill_deadlines[container] = None;
        self.timers.retain(
            |t| !matches!(t.input, Input::KillDeadline { container: c, .. } if c == container),
        );
    }

    /// The pod stops (or a stop under way gets a shorter grace period or
    /// is forced): every live container is killed by the next sync.
    pub(super) fn begin_stop(&mut self, reason: StopReason, grace: Duration, force: bool) {
        let now = Instant::now();
        let deadline = now.checked_add(grace).unwrap_or(now + KILL_WAIT);
        match &mut self.state.stop {
            None => {
                self.state.stop = Some(Stop { reason, force });
                self.stop_deadline = Some(deadline);
                self.outcome.update(|o| o.stop = Some(reason));
            }
            Some(stop) => {
                stop.force |= force;
                let earlier = self.stop_deadline.is_none_or(|d| deadline < d);
                if !earlier && !force {
                    return;
                }
                self.stop_deadline = Some(deadline.min(self.stop_deadline.unwrap_or(deadline)));
                // Kills under way end by the new deadline.
                let due = if force { now } else { deadline };
                for container in 0..self.containers.len() {
                    if let Phase::Killing { run, .. } = self.state.containers[container].phase {
                        let current = self.kill_deadlines[container];
                        if current.is_none_or(|c| due < c) {
                            self.set_kill_deadline(container, run, due);
                        }
                    }
                }
            }
        }
    }
}
