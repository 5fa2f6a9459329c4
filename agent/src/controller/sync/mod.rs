//! The pod sync loop: one thread per pod that owns the pod's actual state
//! ([`PodState`]), takes [`Input`]s from a channel (and from its own
//! timers), applies each to the state ([`handle`]), then syncs: computes
//! the actions ([`compute_actions`]) and carries them out ([`execute`])
//! until there is nothing left to do. Carrying an action out records its
//! result on the container (status and kubelet's events); that record is
//! what status readers see.
//!
//! Each started run gets a waiter thread that only waits for the run to
//! end (with all its output logged) and sends [`Input::ContainerExited`];
//! each hook runs on a thread of its own and sends [`Input::HookDone`].
//! Back-off expiries, kill deadlines, the active deadline and the volume
//! checks are the loop's timers.

mod execute;
mod handle;
#[cfg(test)]
mod tests;

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::actions::compute_actions;
use super::state::{PodState, Role, Traits};
use super::{Input, PodPolicy, Runtime, SharedOutcome};
use crate::console::say;
use crate::container::Container;
use crate::events::EventLog;

/// What the loop shares with the pod: its published outcome and the
/// pod's event log.
#[derive(Clone)]
pub struct Shared {
    pub outcome: Arc<SharedOutcome>,
    pub events: Arc<EventLog>,
}

/// How long containers get to die after SIGKILL before the loop stops
/// waiting for them.
pub const KILL_WAIT: Duration = Duration::from_secs(10);

/// kubelet's `minimumGracePeriodInSeconds`: what a stop signal gets at
/// least before SIGKILL, whatever preStop took (unless forced).
pub const MIN_GRACE: Duration = Duration::from_secs(2);

/// An input the loop sends itself once `due`.
#[derive(Debug)]
struct Timer {
    due: Instant,
    input: Input,
}

/// The loop's state and its steps; [`PodSync::run`] drives it.
pub struct PodSync<R: Runtime> {
    runtime: Arc<R>,
    policy: PodPolicy,
    /// Init containers, then app containers, in spec order, as in
    /// `state.containers`.
    containers: Vec<Arc<Container>>,
    state: PodState,
    timers: Vec<Timer>,
    /// When each container's kill must have ended (SIGKILL then).
    kill_deadlines: Vec<Option<Instant>>,
    /// When the pod's stop must have ended.
    stop_deadline: Option<Instant>,
    /// Where waiters, hooks and probes send their inputs.
    inputs: Sender<Input>,
    outcome: Arc<SharedOutcome>,
    /// Where pod-level events go.
    events: Arc<EventLog>,
}

/// The traits of a container the loop decides on.
pub fn traits_of(container: &Container, role: Role) -> Traits {
    let spec = &container.spec;
    Traits {
        role,
        has_startup_probe: spec.startup_probe.is_some(),
        has_pre_stop: spec.lifecycle.pre_stop.is_some(),
    }
}

impl<R: Runtime> PodSync<R> {
    /// The loop of a pod whose `containers` (with their `roles`) were not
    /// started yet; waiters, hooks and probes report to `inputs`.
    pub fn new(
        runtime: Arc<R>,
        policy: PodPolicy,
        containers: Vec<(Arc<Container>, Role)>,
        inputs: Sender<Input>,
        shared: Shared,
    ) -> Self {
        let traits: Vec<Traits> = containers
            .iter()
            .map(|(c, role)| traits_of(c, *role))
            .collect();
        let state = PodState::new(policy.restart, &traits, Instant::now());
        let count = containers.len();
        let mut sync = PodSync {
            runtime,
            policy,
            containers: containers.into_iter().map(|(c, _)| c).collect(),
            state,
            timers: Vec::new(),
            kill_deadlines: vec![None; count],
            stop_deadline: None,
            inputs,
            outcome: shared.outcome,
            events: shared.events,
        };
        if let Some(deadline) = sync.policy.active_deadline {
            sync.schedule(deadline, Input::ActiveDeadline);
        }
        if let Some(every) = sync.policy.volume_check {
            sync.schedule(every, Input::CheckVolumes);
        }
        sync
    }

    /// Runs the loop until the pod stopped and nothing will run again.
    /// `first_round` is signalled once the first sync is done.
    pub fn run(mut self, inputs: &Receiver<Input>, first_round: Sender<()>) {
        self.sync();
        let _ = first_round.send(());
        while !self.is_over() {
            let Some(input) = self.next_input(inputs) else {
                return;
            };
            self.handle(input);
            self.sync();
        }
    }

    /// Whether the pod stopped and nothing will run again.
    pub fn is_over(&self) -> bool {
        self.state.is_over()
    }

    /// The next input: from the channel, or a timer that came due.
    fn next_input(&mut self, inputs: &Receiver<Input>) -> Option<Input> {
        loop {
            let Some(due) = self.timers.iter().map(|t| t.due).min() else {
                return inputs.recv().ok();
            };
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.take_earliest().map(|t| t.input);
            }
            match inputs.recv_timeout(left) {
                Ok(input) => return Some(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Removes and returns the timer due first.
    fn take_earliest(&mut self) -> Option<Timer> {
        let first = self
            .timers
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| t.due)
            .map(|(i, _)| i)?;
        Some(self.timers.remove(first))
    }

    /// Sends `input` to the loop itself after `delay`.
    fn schedule(&mut self, delay: Duration, input: Input) {
        // A deadline past the clock's range never comes.
        if let Some(due) = Instant::now().checked_add(delay) {
            self.schedule_at(due, input);
        }
    }

    fn schedule_at(&mut self, due: Instant, input: Input) {
        self.timers.push(Timer { due, input });
    }

    /// Computes and carries out actions until the pod is where it should
    /// be. Every action moves a container (or the pod) on, so a sync
    /// needs a few rounds per container; more means a bug, which must not
    /// spin PID 1.
    pub fn sync(&mut self) {
        let max_rounds = 16 + 8 * self.containers.len();
        for _ in 0..max_rounds {
            if !self.round() {
                self.publish();
                return;
            }
        }
        say!("the pod sync loop gave up after {max_rounds} rounds of actions");
        self.publish();
    }

    /// One round: computes the actions for now and carries them out, in
    /// order; false if there were none.
    fn round(&mut self) -> bool {
        self.state.now = Instant::now();
        let actions = compute_actions(&self.state);
        for action in &actions {
            self.execute(*action);
        }
        !actions.is_empty()
    }

    /// Publishes whether the pod is over.
    fn publish(&self) {
        let over = self.state.is_over();
        self.outcome.update(|o| o.over = over);
    }
}

/// A pod's loop running on its own thread, as the pod holds it.
pub struct SyncLoop {
    inputs: Sender<Input>,
    /// Disconnected once the loop thread ended.
    ended: Receiver<()>,
}

impl SyncLoop {
    /// Starts the loop of a pod whose containers were not started yet;
    /// returns once the first sync is done.
    pub fn start<R: Runtime>(
        runtime: Arc<R>,
        policy: PodPolicy,
        containers: Vec<(Arc<Container>, Role)>,
        shared: Shared,
    ) -> io::Result<SyncLoop> {
        let (inputs, received) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let (first_tx, first_round) = mpsc::channel();
        let waiters = inputs.clone();
        std::thread::Builder::new()
            .name("pod-sync".into())
            .spawn(move || {
                // Dropped when the loop ends, however it ends.
                let _ended = ended_tx;
                PodSync::new(runtime, policy, containers, waiters, shared).run(&received, first_tx);
            })?;
        // An error here means the loop ended early, which `stop` copes with.
        let _ = first_round.recv();
        Ok(SyncLoop { inputs, ended })
    }

    /// Asks the loop to stop the pod (preStop, the stop signal, `grace`,
    /// SIGKILL; `force`: SIGKILL at once) and waits up to `limit` for it
    /// to end; false if it did not end in time.
    pub fn stop(self, grace: Duration, force: bool, limit: Duration) -> bool {
        if self
            .inputs
            .send(Input::StopRequested { grace, force })
            .is_err()
        {
            return true;
        }
        !matches!(
            self.ended.recv_timeout(limit),
            Err(RecvTimeoutError::Timeout)
        )
    }
}
