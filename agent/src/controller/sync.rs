//! The pod sync loop: one thread per pod that owns the pod's actual state
//! ([`PodState`]), takes [`Input`]s from a channel (and from its own
//! timers), applies each to the state, then syncs: computes the actions
//! ([`compute_actions`]) and carries them out until there is nothing left
//! to do. Carrying an action out records its result on the container
//! (status and kubelet's events, see `container`); that record is what
//! status readers see.
//!
//! Each started run gets a waiter thread that only waits for the run to
//! end (with all its output logged) and sends [`Input::ContainerExited`].
//! Back-off expiries and the stop's deadlines are the loop's timers.

use std::io;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::actions::{compute_actions, Action, Phase, PodState, Slot, StopPhase};
use super::{Input, PodPolicy, Run, Runtime};
use crate::console::say;
use crate::container::{Container, START_ERROR_EXIT_CODE};
use crate::ids::random_id;

/// How long containers get to die after SIGKILL before the loop stops
/// waiting for them.
pub const KILL_WAIT: Duration = Duration::from_secs(10);

/// Most rounds of actions one sync carries out. Every action moves a
/// container on and a sync needs a handful; more means a bug, which must
/// not spin PID 1.
const MAX_ROUNDS: usize = 64;

/// An input the loop sends itself once `due`.
#[derive(Debug)]
struct Timer {
    due: Instant,
    input: Input,
}

/// The loop's state and its steps; [`PodSync::run`] drives it.
pub struct PodSync<'r, R: Runtime> {
    runtime: &'r R,
    policy: PodPolicy,
    /// In spec order, as in `state.containers`.
    containers: Vec<Arc<Container>>,
    state: PodState,
    timers: Vec<Timer>,
    /// Where waiter threads send exits.
    inputs: Sender<Input>,
}

impl<'r, R: Runtime> PodSync<'r, R> {
    /// The loop of a pod whose `containers` were not started yet; run
    /// waiters report to `inputs`.
    pub fn new(
        runtime: &'r R,
        policy: PodPolicy,
        containers: Vec<Arc<Container>>,
        inputs: Sender<Input>,
    ) -> Self {
        let state = PodState::new(policy.restart, containers.len(), Instant::now());
        PodSync {
            runtime,
            policy,
            containers,
            state,
            timers: Vec::new(),
            inputs,
        }
    }

    /// Runs the loop until the pod stopped and nothing will run again.
    /// `first_round` is signalled once every container's first start was
    /// tried (in spec order).
    pub fn run(mut self, inputs: &Receiver<Input>, first_round: Sender<()>) {
        self.round();
        let _ = first_round.send(());
        self.sync();
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
            self.timers.push(Timer { due, input });
        }
    }

    /// Applies an input to the pod's state (recording a run's end on its
    /// container); what follows from it is for [`PodSync::sync`].
    pub fn handle(&mut self, input: Input) {
        match input {
            Input::ContainerExited {
                container,
                run,
                exit,
            } => {
                let (Some(c), Some(slot)) = (
                    self.containers.get(container),
                    self.state.containers.get_mut(container),
                ) else {
                    return;
                };
                match slot.phase {
                    Phase::Running { run: current, .. } if current == run => {
                        c.set_exited(&exit);
                        slot.phase = Phase::Exited {
                            run,
                            exit_code: exit.code,
                        };
                    }
                    _ => say!("ignoring the end of run {run} of {}: not running", c.name()),
                }
            }
            Input::StopRequested { grace } => {
                if self.state.stop.is_none() {
                    self.state.stop = Some(StopPhase::Graceful);
                }
                // A later request may shorten the grace period, never
                // lengthen it: the first expiry counts.
                if self.state.stop == Some(StopPhase::Graceful) {
                    self.schedule(grace, Input::GracePeriodExpired);
                }
            }
            Input::GracePeriodExpired => {
                if self.state.stop == Some(StopPhase::Graceful) {
                    self.state.stop = Some(StopPhase::Forced);
                    self.schedule(KILL_WAIT, Input::KillWaitExpired);
                }
            }
            Input::KillWaitExpired => {
                if self.state.stop == Some(StopPhase::Forced) {
                    self.state.stop = Some(StopPhase::GaveUp);
                }
            }
            Input::BackOffExpired { container } => {
                if let Some(slot) = self.state.containers.get_mut(container) {
                    if let Phase::BackingOff { run } = slot.phase {
                        slot.phase = Phase::RestartDue { run };
                    }
                }
            }
        }
    }

    /// Computes and carries out actions until the pod is where it should
    /// be.
    pub fn sync(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.round() {
                return;
            }
        }
        say!("the pod sync loop gave up after {MAX_ROUNDS} rounds of actions");
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

    /// The container at `index` and its slot.
    fn slot(&mut self, index: usize) -> Option<(Arc<Container>, &mut Slot)> {
        let container = Arc::clone(self.containers.get(index)?);
        Some((container, self.state.containers.get_mut(index)?))
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Start { container } => self.start_run(container, 0),
            Action::Restart { container, run } => {
                if let Some((c, _)) = self.slot(container) {
                    let id = random_id().unwrap_or_else(|_| format!("{:064x}", u64::from(run)));
                    c.begin_restart(id);
                    self.start_run(container, run);
                }
            }
            Action::BackOff { container, delay } => self.back_off(container, delay),
            Action::Finish { container } => {
                if let Some((c, slot)) = self.slot(container) {
                    c.finish();
                    slot.phase = Phase::Done;
                }
            }
            Action::Kill { container, signal } => {
                let runtime = self.runtime;
                if let Some((c, slot)) = self.slot(container) {
                    if let Phase::Running { signalled, .. } = &mut slot.phase {
                        if *signalled < Some(signal) {
                            if signalled.is_none() {
                                c.killing();
                            }
                            runtime.signal(&c, signal);
                            *signalled = Some(signal);
                        }
                    }
                }
            }
            Action::Abandon { container } => {
                if let Some((c, slot)) = self.slot(container) {
                    say!("container {} did not end after SIGKILL", c.name());
                    slot.phase = Phase::Done;
                }
            }
        }
    }

    /// The last run ended and another follows after `delay`.
    fn back_off(&mut self, container: usize, delay: Duration) {
        let now = self.state.now;
        let pod = self.policy.pod.clone();
        let Some((c, slot)) = self.slot(container) else {
            return;
        };
        let Phase::Exited { run, .. } = slot.phase else {
            return;
        };
        slot.backoff.advance(now);
        if delay.is_zero() {
            slot.phase = Phase::RestartDue { run };
            return;
        }
        slot.phase = Phase::BackingOff { run };
        c.enter_backoff(delay, &pod);
        self.schedule(delay, Input::BackOffExpired { container });
    }

    /// Creates and starts run `run` of a container.
    fn start_run(&mut self, container: usize, run: u32) {
        let Some(c) = self.containers.get(container).map(Arc::clone) else {
            return;
        };
        let phase = self.launch(container, &c, run);
        if let Some(slot) = self.state.containers.get_mut(container) {
            slot.phase = phase;
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
            c.set_create_error(format!("agent could not start a thread: {e}"));
            return Phase::Done;
        }
        c.image_present();
        let created = match self.runtime.create(c) {
            Ok(created) => created,
            Err(message) => {
                say!("container {} could not be created: {message}", c.name());
                c.set_create_error(message);
                return Phase::Done;
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
                c.set_running(started.started_at(), started.info());
                let _ = hand_over.send(started);
                Phase::Running {
                    run,
                    signalled: None,
                }
            }
        }
    }
}

/// A pod's loop running on its own thread, as the pod holds it.
pub struct SyncLoop {
    inputs: Sender<Input>,
    /// Disconnected once the loop thread ended.
    ended: Receiver<()>,
}

impl SyncLoop {
    /// Starts the loop of a pod whose `containers` were not started yet;
    /// returns once every container's first start was tried.
    pub fn start<R>(
        runtime: Arc<R>,
        policy: PodPolicy,
        containers: Vec<Arc<Container>>,
    ) -> io::Result<SyncLoop>
    where
        R: Runtime + Send + Sync + 'static,
    {
        let (inputs, received) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel::<()>();
        let (first_tx, first_round) = mpsc::channel();
        let waiters = inputs.clone();
        std::thread::Builder::new()
            .name("pod-sync".into())
            .spawn(move || {
                // Dropped when the loop ends, however it ends.
                let _ended = ended_tx;
                PodSync::new(&*runtime, policy, containers, waiters).run(&received, first_tx);
            })?;
        // An error here means the loop ended early, which `stop` copes with.
        let _ = first_round.recv();
        Ok(SyncLoop { inputs, ended })
    }

    /// Asks the loop to stop the pod (SIGTERM, `grace`, SIGKILL) and waits
    /// up to `limit` for it to end; false if it did not end in time.
    pub fn stop(self, grace: Duration, limit: Duration) -> bool {
        if self.inputs.send(Input::StopRequested { grace }).is_err() {
            return true;
        }
        !matches!(
            self.ended.recv_timeout(limit),
            Err(RecvTimeoutError::Timeout)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use podvm_proto::{ContainerState, Event, EventType, RestartPolicy};

    use super::*;
    use crate::container::state::RunExit;
    use crate::container::tests::{info, spec};
    use crate::container::RunningInfo;
    use crate::controller::StopSignal;
    use crate::events::kubelet::pod_desc;
    use crate::events::EventLog;

    /// Last-resort limit for an exit the script owes; never reached when
    /// the code works.
    const LONG: Duration = Duration::from_secs(300);

    /// What one scripted run does (one step per creation, in order).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        /// Creating fails.
        CreateFails,
        /// Starting fails.
        StartFails,
        /// The process runs and exits with this code.
        Exits(i32),
        /// The process runs until SIGTERM or SIGKILL.
        EndsOnTerm,
        /// The process runs until SIGKILL.
        IgnoresTerm,
        /// The process survives even SIGKILL.
        Unkillable,
        /// The pod is asked to stop while the process is being started;
        /// it runs until SIGTERM.
        StoppedWhileStarting,
    }

    /// A runtime playing a script. It counts the exits it owes the loop
    /// (runs that end by themselves, and runs a signal ended), so the test
    /// driver knows when to wait for one instead of firing a timer.
    #[derive(Default)]
    struct Script {
        steps: Mutex<VecDeque<Step>>,
        starts: Mutex<Vec<(String, u32)>>,
        signals: Mutex<Vec<(String, StopSignal)>>,
        /// Runs that wait for signals, by container.
        live: Mutex<HashMap<String, (Step, Sender<StopSignal>)>>,
        owed: AtomicUsize,
        /// The loop's channel, for a stop requested during a start.
        loop_inputs: Mutex<Option<Sender<Input>>>,
    }

    struct ScriptedRun {
        step: Step,
        signals: Option<Receiver<StopSignal>>,
    }

    fn ends_on(step: Step, signal: StopSignal) -> bool {
        match step {
            Step::EndsOnTerm | Step::StoppedWhileStarting => true,
            Step::IgnoresTerm => signal == StopSignal::Kill,
            _ => false,
        }
    }

    impl Script {
        fn new(steps: &[Step]) -> Script {
            Script {
                steps: Mutex::new(steps.iter().copied().collect()),
                ..Script::default()
            }
        }

        fn exhausted(&self) -> bool {
            self.steps.lock().unwrap().is_empty()
        }
    }

    impl Runtime for Script {
        type Created = Step;
        type Run = ScriptedRun;

        fn create(&self, _: &Container) -> Result<Step, String> {
            match self.steps.lock().unwrap().pop_front() {
                Some(Step::CreateFails) => Err("no such image".into()),
                Some(step) => Ok(step),
                None => panic!("the script has no more steps"),
            }
        }

        fn start(&self, c: &Container, step: Step, run: u32) -> Result<ScriptedRun, String> {
            self.starts.lock().unwrap().push((c.name().into(), run));
            match step {
                Step::CreateFails => unreachable!("creation failed"),
                Step::StartFails => Err("exec: \"app\": not found".into()),
                Step::Exits(_) => {
                    self.owed.fetch_add(1, Ordering::SeqCst);
                    Ok(ScriptedRun {
                        step,
                        signals: None,
                    })
                }
                Step::EndsOnTerm
                | Step::IgnoresTerm
                | Step::Unkillable
                | Step::StoppedWhileStarting => {
                    if step == Step::StoppedWhileStarting {
                        let inputs = self.loop_inputs.lock().unwrap();
                        let inputs = inputs.as_ref().expect("the loop's channel");
                        inputs
                            .send(Input::StopRequested {
                                grace: Duration::from_secs(30),
                            })
                            .unwrap();
                    }
                    let (tx, rx) = mpsc::channel();
                    self.live
                        .lock()
                        .unwrap()
                        .insert(c.name().into(), (step, tx));
                    Ok(ScriptedRun {
                        step,
                        signals: Some(rx),
                    })
                }
            }
        }

        fn signal(&self, c: &Container, signal: StopSignal) {
            self.signals.lock().unwrap().push((c.name().into(), signal));
            if let Some((step, tx)) = self.live.lock().unwrap().get(c.name()) {
                if ends_on(*step, signal) {
                    self.owed.fetch_add(1, Ordering::SeqCst);
                }
                tx.send(signal).unwrap();
            }
        }
    }

    impl Run for ScriptedRun {
        fn info(&self) -> RunningInfo {
            info()
        }

        fn started_at(&self) -> String {
            "2024-01-01T00:00:00Z".into()
        }

        fn wait(self) -> RunExit {
            let (code, signal) = match (self.step, &self.signals) {
                (Step::Exits(code), _) => (code, None),
                (_, Some(signals)) => loop {
                    match signals.recv() {
                        Ok(s) if ends_on(self.step, s) => {
                            let n = s.signal() as i32;
                            break (128 + n, Some(n));
                        }
                        Ok(_) => {}
                        // The script is gone: the test is over.
                        Err(_) => break (137, Some(9)),
                    }
                },
                (step, None) => unreachable!("{step:?} has no process"),
            };
            RunExit {
                code,
                signal,
                finished_at: "2024-01-01T00:00:01Z".into(),
            }
        }
    }

    /// What a played script left.
    struct Played {
        containers: Vec<Arc<Container>>,
        events: Vec<Event>,
        generation: u64,
        script: Script,
        /// The CrashLoopBackOff messages shown, with the restart count.
        backoffs: Vec<(u32, String)>,
    }

    /// Runs the loop over `steps` for containers `names` with virtual time
    /// (and notes every CrashLoopBackOff the containers show):
    /// exits the script owes are waited for; otherwise a queued input is
    /// taken, or, once the script is done, the pod is stopped (grace 30 s),
    /// or else the next timer fires at once.
    fn play(names: &[&str], steps: &[Step], restart: RestartPolicy) -> Played {
        let log = Arc::new(EventLog::new());
        let containers: Vec<Arc<Container>> = names
            .iter()
            .map(|name| {
                Arc::new(Container::new(
                    spec(name),
                    PathBuf::from("/nonexistent/app.log"),
                    "0".repeat(64),
                    Arc::clone(&log),
                ))
            })
            .collect();
        let script = Script::new(steps);
        let (tx, rx) = mpsc::channel();
        *script.loop_inputs.lock().unwrap() = Some(tx.clone());
        let policy = PodPolicy {
            restart,
            pod: pod_desc("web", "default", "uid-1"),
        };
        let mut sync = PodSync::new(&script, policy, containers.clone(), tx);
        sync.sync();
        let mut stop_sent = false;
        let mut backoffs = Vec::new();
        let mut note_backoffs = |containers: &[Arc<Container>]| {
            for c in containers {
                let status = c.status();
                if let ContainerState::Waiting {
                    reason,
                    message: Some(message),
                } = &status.state
                {
                    let seen = (status.restart_count, message.clone());
                    if reason == "CrashLoopBackOff" && !backoffs.contains(&seen) {
                        backoffs.push(seen);
                    }
                }
            }
        };
        note_backoffs(&containers);
        while !sync.is_over() {
            let input = if script.owed.load(Ordering::SeqCst) > 0 {
                let input = rx.recv_timeout(LONG).expect("an owed exit");
                if matches!(input, Input::ContainerExited { .. }) {
                    script.owed.fetch_sub(1, Ordering::SeqCst);
                }
                input
            } else if let Ok(input) = rx.try_recv() {
                input
            } else if script.exhausted() && !stop_sent {
                stop_sent = true;
                Input::StopRequested {
                    grace: Duration::from_secs(30),
                }
            } else {
                sync.take_earliest()
                    .expect("the loop waits for nothing")
                    .input
            };
            sync.handle(input);
            sync.sync();
            note_backoffs(&containers);
        }
        let (events, generation) = log.watch(0, 0, Duration::ZERO);
        Played {
            containers,
            events,
            generation,
            script,
            backoffs,
        }
    }

    /// (type, reason, message, count), all about container "app".
    fn summary(events: &[Event]) -> Vec<(EventType, &str, &str, u32)> {
        assert!(events.iter().all(|e| e.container.as_deref() == Some("app")));
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        events
            .iter()
            .map(|e| (e.event_type, e.reason.as_str(), e.message.as_str(), e.count))
            .collect()
    }

    const PULLED: &str = "Container image \"busybox:1.36\" already present on machine";
    const BACKOFF: &str = "Back-off restarting failed container app in pod web_default(uid-1)";

    fn runs(script: &Script) -> Vec<u32> {
        script.starts.lock().unwrap().iter().map(|s| s.1).collect()
    }

    #[test]
    fn crash_loop_events_come_in_order_and_fold() {
        let played = play(
            &["app"],
            &[Step::Exits(1), Step::Exits(1), Step::Exits(2)],
            RestartPolicy::Always,
        );
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&played.events),
            [
                (Normal, "Pulled", PULLED, 3),
                (Normal, "Created", "Created container: app", 3),
                (Normal, "Started", "Started container app", 3),
                (Warning, "BackOff", BACKOFF, 2),
            ]
        );
        // kubelet's back-off: immediate (not shown), then 10 s, then 20 s.
        let pod = "pod=web_default(uid-1)";
        assert_eq!(
            played.backoffs,
            [
                (
                    1,
                    format!("back-off 10s restarting failed container=app {pod}")
                ),
                (
                    2,
                    format!("back-off 20s restarting failed container=app {pod}")
                ),
            ]
        );
        assert_eq!(runs(&played.script), [0, 1, 2]);
        let status = played.containers[0].status();
        assert_eq!(status.restart_count, 2);
        assert!(
            matches!(
                &status.state,
                ContainerState::Terminated { exit_code: 2, .. }
            ),
            "{status:?}"
        );
        assert!(matches!(
            &status.last_state,
            Some(ContainerState::Terminated { exit_code: 1, .. })
        ));
        assert!(played.containers[0].is_finished());
        // Every status change moved the generation on: per run Running and
        // Terminated, per back-off CrashLoopBackOff, per restart the new
        // run, and the final state restored when stopped in back-off.
        assert_eq!(played.generation, 1 + 3 * 2 + 2 + 2 + 1);
        assert!(played.script.signals.lock().unwrap().is_empty());
    }

    #[test]
    fn a_start_error_is_created_then_failed() {
        let played = play(&["app"], &[Step::StartFails], RestartPolicy::Never);
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&played.events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Normal, "Created", "Created container: app", 1),
                (Warning, "Failed", "Error: exec: \"app\": not found", 1),
            ]
        );
        assert!(matches!(
            played.containers[0].status().state,
            ContainerState::Terminated { exit_code: 128, ref reason, .. } if reason == "StartError"
        ));
    }

    #[test]
    fn a_start_error_is_restarted_as_a_failure() {
        let played = play(
            &["app"],
            &[Step::StartFails, Step::Exits(0)],
            RestartPolicy::OnFailure,
        );
        assert_eq!(runs(&played.script), [0, 1]);
        assert!(played.backoffs.is_empty());
        let status = played.containers[0].status();
        assert_eq!(status.restart_count, 1);
        assert!(matches!(
            status.state,
            ContainerState::Terminated { exit_code: 0, ref reason, .. } if reason == "Completed"
        ));
        assert!(matches!(
            status.last_state,
            Some(ContainerState::Terminated { exit_code: 128, ref reason, .. }) if reason == "StartError"
        ));
    }

    #[test]
    fn a_create_error_fails_before_created() {
        let played = play(&["app"], &[Step::CreateFails], RestartPolicy::Always);
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&played.events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Warning, "Failed", "Error: no such image", 1),
            ]
        );
        assert!(played.script.starts.lock().unwrap().is_empty());
        assert!(matches!(
            played.containers[0].status().state,
            ContainerState::Waiting { ref reason, .. } if reason == "CreateContainerError"
        ));
        assert!(played.containers[0].is_finished());
        assert_eq!(played.generation, 2);
    }

    #[test]
    fn a_stop_during_a_start_terms_the_new_run() {
        let played = play(
            &["app"],
            &[Step::StoppedWhileStarting],
            RestartPolicy::Always,
        );
        use EventType::Normal;
        assert_eq!(
            summary(&played.events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Normal, "Created", "Created container: app", 1),
                (Normal, "Started", "Started container app", 1),
                (Normal, "Killing", "Stopping container app", 1),
            ]
        );
        assert_eq!(
            *played.script.signals.lock().unwrap(),
            [("app".to_string(), StopSignal::Term)]
        );
        let status = played.containers[0].status();
        assert_eq!(status.restart_count, 0);
        assert!(matches!(
            status.state,
            ContainerState::Terminated {
                exit_code: 143,
                signal: Some(15),
                ..
            }
        ));
    }

    #[test]
    fn containers_start_in_spec_order_and_stop_together() {
        let played = play(
            &["a", "b", "c"],
            &[Step::EndsOnTerm, Step::IgnoresTerm, Step::Exits(0)],
            RestartPolicy::Never,
        );
        let order: Vec<(&str, &str)> = played
            .events
            .iter()
            .map(|e| (e.container.as_deref().unwrap_or(""), e.reason.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("a", "Pulled"),
                ("a", "Created"),
                ("a", "Started"),
                ("b", "Pulled"),
                ("b", "Created"),
                ("b", "Started"),
                ("c", "Pulled"),
                ("c", "Created"),
                ("c", "Started"),
                ("a", "Killing"),
                ("b", "Killing"),
            ]
        );
        // TERM to both, KILL to the one that ignored it once the grace
        // period was over.
        let signals = played.script.signals.lock().unwrap().clone();
        let by = |name: &str, s| (name.to_string(), s);
        assert_eq!(
            signals,
            [
                by("a", StopSignal::Term),
                by("b", StopSignal::Term),
                by("b", StopSignal::Kill),
            ]
        );
        let ended: Vec<(i32, Option<i32>)> = played
            .containers
            .iter()
            .map(|c| match c.status().state {
                ContainerState::Terminated {
                    exit_code, signal, ..
                } => (exit_code, signal),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ended, [(143, Some(15)), (137, Some(9)), (0, None)]);
        assert!(played.containers.iter().all(|c| c.is_finished()));
    }

    #[test]
    fn a_run_that_outlives_sigkill_is_abandoned() {
        let played = play(&["app"], &[Step::Unkillable], RestartPolicy::Always);
        assert_eq!(
            *played.script.signals.lock().unwrap(),
            [
                ("app".to_string(), StopSignal::Term),
                ("app".to_string(), StopSignal::Kill),
            ]
        );
        let c = &played.containers[0];
        assert!(matches!(c.status().state, ContainerState::Running { .. }));
        assert!(!c.is_finished());
    }

    #[test]
    fn stale_and_unknown_inputs_change_nothing() {
        let log = Arc::new(EventLog::new());
        let c = Arc::new(crate::container::tests::container(&log));
        c.set_running("2024-01-01T00:00:00Z".into(), info());
        let script = Script::new(&[]);
        let (tx, _rx) = mpsc::channel();
        let policy = PodPolicy {
            restart: RestartPolicy::Always,
            pod: pod_desc("web", "default", "uid-1"),
        };
        let mut sync = PodSync::new(&script, policy, vec![Arc::clone(&c)], tx);
        let running = Phase::Running {
            run: 3,
            signalled: None,
        };
        sync.state.containers[0].phase = running;
        let before = (c.status(), log.watch(u64::MAX, 0, Duration::ZERO).1);
        let exit = RunExit {
            code: 1,
            signal: None,
            finished_at: "2024-01-01T00:00:02Z".into(),
        };
        for input in [
            // An earlier run, a container that does not exist.
            Input::ContainerExited {
                container: 0,
                run: 2,
                exit: exit.clone(),
            },
            Input::ContainerExited {
                container: 9,
                run: 3,
                exit,
            },
            // Timers for what is not waiting for them.
            Input::BackOffExpired { container: 0 },
            Input::BackOffExpired { container: 9 },
            Input::GracePeriodExpired,
            Input::KillWaitExpired,
        ] {
            sync.handle(input);
        }
        assert_eq!(sync.state.containers[0].phase, running);
        assert_eq!(sync.state.stop, None);
        assert!(sync.timers.is_empty());
        assert_eq!(
            (c.status(), log.watch(u64::MAX, 0, Duration::ZERO).1),
            before
        );
    }
}
