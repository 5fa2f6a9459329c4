//! The sync loop against a scripted runtime, in virtual time: what it
//! records on the containers (status, kubelet's events) and what it does
//! to them (starts, signals, hooks), in kubelet's order.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::sys::signal::Signal;
use podvm_proto::{
    ContainerSpec, ContainerState, Event, EventType, HookAction, Probe, ProbeAction, RestartPolicy,
};

use super::*;
use crate::container::state::{RunExit, WaitingReason};
use crate::container::tests::{info, spec};
use crate::container::{CreateFailure, RunningInfo};
use crate::controller::input::HookKind;
use crate::controller::state::{StopReason, StopSignal};
use crate::controller::{ProbeKind, Run};
use crate::events::kubelet::pod_desc;
use crate::events::EventLog;

/// Last-resort limit for an input the script owes; never reached when
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
    /// The pod is asked to stop while the process is being started; it
    /// runs until SIGTERM.
    StoppedWhileStarting,
}

/// A runtime playing a script. It counts the exits it owes the loop (runs
/// that end by themselves, and runs a signal ended), so the test driver
/// knows when to wait for one instead of firing a timer.
#[derive(Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    starts: Mutex<Vec<(String, u32)>>,
    signals: Mutex<Vec<(String, StopSignal)>>,
    hooks: Mutex<Vec<(String, String)>>,
    /// Starts and hooks, in the order they happened.
    trace: Mutex<Vec<String>>,
    /// Probe results sent as soon as a run's probes start: (container,
    /// run, probe, success).
    probe_plan: Mutex<Vec<(String, u32, ProbeKind, bool)>>,
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

    fn create(&self, _: &Container) -> Result<Step, CreateFailure> {
        match self.steps.lock().unwrap().pop_front() {
            Some(Step::CreateFails) => Err(CreateFailure::Runtime("no such image".into())),
            Some(step) => Ok(step),
            None => panic!("the script has no more steps"),
        }
    }

    fn start(&self, c: &Container, step: Step, run: u32) -> Result<ScriptedRun, String> {
        self.starts.lock().unwrap().push((c.name().into(), run));
        self.trace
            .lock()
            .unwrap()
            .push(format!("start {}", c.name()));
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
                            force: false,
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

    fn run_hook(
        &self,
        c: &Container,
        action: &HookAction,
        _: Option<Duration>,
    ) -> Result<(), String> {
        let HookAction::Exec { command } = action else {
            return Ok(());
        };
        let word = command.first().cloned().unwrap_or_default();
        self.hooks
            .lock()
            .unwrap()
            .push((c.name().into(), word.clone()));
        self.trace
            .lock()
            .unwrap()
            .push(format!("hook {} {word}", c.name()));
        let calls = self
            .hooks
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, w)| name == c.name() && *w == word)
            .count();
        if word == "fail" || (word == "fail-once" && calls == 1) {
            Err("hook failed".into())
        } else {
            Ok(())
        }
    }

    fn watch_probes(&self, index: usize, c: &Arc<Container>, run: u32, inputs: Sender<Input>) {
        for (name, r, probe, success) in self.probe_plan.lock().unwrap().iter() {
            if name == c.name() && *r == run {
                inputs
                    .send(Input::ProbeResult {
                        container: index,
                        run,
                        probe: *probe,
                        success: *success,
                    })
                    .unwrap();
            }
        }
    }

    fn forget_probes(&self, _: usize, _: u32) {}

    fn termination_message(&self, _: &Container, exit: &RunExit) -> Option<String> {
        (exit.code == 3).then(|| "exit three".to_string())
    }

    fn volume_over_limit(&self) -> Option<String> {
        None
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
                        let n = s.signal(Signal::SIGTERM) as i32;
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
            oom_killed: false,
            finished_at: "2024-01-01T00:00:01Z".into(),
        }
    }
}

/// What a played script left.
struct Played {
    containers: Vec<Arc<Container>>,
    events: Vec<Event>,
    generation: u64,
    script: Arc<Script>,
    outcome: crate::controller::PodOutcome,
    /// The CrashLoopBackOff messages shown, with the restart count.
    backoffs: Vec<(u32, String)>,
}

/// The policy of the test pod `web`.
fn policy(restart: RestartPolicy, active_deadline: Option<Duration>) -> PodPolicy {
    PodPolicy {
        restart,
        pod: pod_desc("web", "default", "uid-1"),
        grace: Duration::from_secs(30),
        active_deadline,
        volume_check: None,
    }
}

fn new_container(spec: ContainerSpec, log: &Arc<EventLog>) -> Arc<Container> {
    Arc::new(Container::new(
        spec,
        PathBuf::from("/nonexistent/app"),
        "0".repeat(64),
        Arc::clone(log),
        WaitingReason::ContainerCreating,
    ))
}

/// A loop (restart policy Always) over the app container `c` playing
/// `steps`, not synced yet; its inputs' receiver and published outcome.
fn loop_over(
    c: &Arc<Container>,
    log: &Arc<EventLog>,
    steps: &[Step],
    active_deadline: Option<Duration>,
) -> (PodSync<Script>, Receiver<Input>, Arc<SharedOutcome>) {
    let (tx, rx) = mpsc::channel();
    let outcome = Arc::new(SharedOutcome::default());
    let shared = Shared {
        outcome: Arc::clone(&outcome),
        events: Arc::clone(log),
    };
    let sync = PodSync::new(
        Arc::new(Script::new(steps)),
        policy(RestartPolicy::Always, active_deadline),
        vec![(Arc::clone(c), Role::App)],
        tx,
        shared,
    );
    (sync, rx, outcome)
}

/// A pod's container for [`play_pod`]: its spec and role.
fn app(name: &str) -> (ContainerSpec, Role) {
    (spec(name), Role::App)
}

fn with_hook(mut c: (ContainerSpec, Role), hook: HookKind, word: &str) -> (ContainerSpec, Role) {
    let action = HookAction::Exec {
        command: vec![word.into()],
    };
    match hook {
        HookKind::PostStart => c.0.lifecycle.post_start = Some(action),
        HookKind::PreStop => c.0.lifecycle.pre_stop = Some(action),
    }
    c
}

/// Whether the loop waits for a hook's end.
fn hook_outstanding(sync: &PodSync<Script>) -> bool {
    sync.state.containers.iter().any(|s| {
        matches!(
            s.phase,
            Phase::PostStart { .. }
                | Phase::Killing {
                    stage: KillStage::PreStop,
                    ..
                }
        )
    })
}

use crate::controller::state::{KillStage, Phase};

fn play(names: &[&str], steps: &[Step], restart: RestartPolicy) -> Played {
    let pod: Vec<_> = names.iter().map(|n| app(n)).collect();
    play_pod(pod, Script::new(steps), restart)
}

/// Runs the loop over the script for the pod's containers with virtual
/// time (and notes every CrashLoopBackOff the containers show): inputs
/// the script owes (exits, hook ends) are waited for; otherwise a queued
/// input is taken, or, once the script is done, the pod is stopped (grace
/// 30 s), or else the next timer fires at once.
fn play_pod(pod: Vec<(ContainerSpec, Role)>, script: Script, restart: RestartPolicy) -> Played {
    let log = Arc::new(EventLog::new());
    let containers: Vec<(Arc<Container>, Role)> = pod
        .into_iter()
        .map(|(spec, role)| (new_container(spec, &log), role))
        .collect();
    let script = Arc::new(script);
    let (tx, rx) = mpsc::channel();
    *script.loop_inputs.lock().unwrap() = Some(tx.clone());
    let policy = policy(restart, None);
    let outcome = Arc::new(SharedOutcome::default());
    let shared = Shared {
        outcome: Arc::clone(&outcome),
        events: Arc::clone(&log),
    };
    let handles: Vec<Arc<Container>> = containers.iter().map(|(c, _)| Arc::clone(c)).collect();
    let mut sync = PodSync::new(Arc::clone(&script), policy, containers, tx, shared);
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
    note_backoffs(&handles);
    while !sync.is_over() {
        let input = if script.owed.load(Ordering::SeqCst) > 0 || hook_outstanding(&sync) {
            let input = rx.recv_timeout(LONG).expect("an owed input");
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
                force: false,
            }
        } else {
            sync.take_earliest()
                .expect("the loop waits for nothing")
                .input
        };
        sync.handle(input);
        sync.sync();
        note_backoffs(&handles);
    }
    let (events, generation) = log.watch(0, 0, Duration::ZERO);
    Played {
        containers: handles,
        events,
        generation,
        script,
        outcome: outcome.get(),
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

/// (container, reason) in order.
fn order(events: &[Event]) -> Vec<(&str, &str)> {
    events
        .iter()
        .map(|e| (e.container.as_deref().unwrap_or(""), e.reason.as_str()))
        .collect()
}

const PULLED: &str = "Container image \"busybox:1.36\" already present on machine";
const BACKOFF: &str = "Back-off restarting failed container app in pod web_default(uid-1)";

fn runs(script: &Script) -> Vec<u32> {
    script.starts.lock().unwrap().iter().map(|s| s.1).collect()
}

fn terminated(c: &Container) -> (i32, Option<i32>) {
    match c.status().state {
        ContainerState::Terminated {
            exit_code, signal, ..
        } => (exit_code, signal),
        other => panic!("{other:?}"),
    }
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
    assert!(played.script.signals.lock().unwrap().is_empty());
    assert!(played.generation > 1);
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
    // Nothing will run again: the pod ended by itself.
    assert_eq!(played.outcome.stop, Some(StopReason::Completed));
    assert!(played.outcome.over);
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
}

#[test]
fn a_create_error_is_tried_again_as_the_same_run() {
    let played = play(
        &["app"],
        &[Step::CreateFails, Step::EndsOnTerm],
        RestartPolicy::Always,
    );
    use EventType::{Normal, Warning};
    assert_eq!(
        summary(&played.events),
        // A folded event moves to where it last happened.
        [
            (Warning, "Failed", "Error: no such image", 1),
            (Normal, "Pulled", PULLED, 2),
            (Normal, "Created", "Created container: app", 1),
            (Normal, "Started", "Started container app", 1),
            (Normal, "Killing", "Stopping container app", 1),
        ]
    );
    assert_eq!(runs(&played.script), [0]);
    let status = played.containers[0].status();
    assert_eq!(status.restart_count, 0);
    assert_eq!(terminated(&played.containers[0]), (143, Some(15)));
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
    assert_eq!(terminated(&played.containers[0]), (143, Some(15)));
}

#[test]
fn containers_start_in_spec_order_and_stop_together() {
    let played = play(
        &["a", "b", "c"],
        &[Step::EndsOnTerm, Step::IgnoresTerm, Step::Exits(0)],
        RestartPolicy::Never,
    );
    assert_eq!(
        order(&played.events),
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
    // TERM to both, KILL to the one that ignored it once the grace period
    // was over.
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
    let ended: Vec<(i32, Option<i32>)> = played.containers.iter().map(|c| terminated(c)).collect();
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
fn init_containers_run_in_order_before_the_app() {
    let pod = vec![
        (spec("init-a"), Role::Init),
        (spec("init-b"), Role::Init),
        app("app"),
    ];
    let played = play_pod(
        pod,
        Script::new(&[
            Step::Exits(0),
            Step::Exits(1),
            Step::Exits(0),
            Step::EndsOnTerm,
        ]),
        RestartPolicy::OnFailure,
    );
    let starts = played.script.starts.lock().unwrap().clone();
    let names: Vec<(&str, u32)> = starts.iter().map(|(n, r)| (n.as_str(), *r)).collect();
    // init-b failed once and was restarted before the app started.
    assert_eq!(
        names,
        [("init-a", 0), ("init-b", 0), ("init-b", 1), ("app", 0)]
    );
    assert_eq!(played.containers[1].status().restart_count, 1);
    assert_eq!(terminated(&played.containers[0]), (0, None));
    assert_eq!(terminated(&played.containers[2]), (143, Some(15)));
}

#[test]
fn a_failed_init_container_under_never_fails_the_pod() {
    let pod = vec![(spec("init"), Role::Init), app("app")];
    let played = play_pod(pod, Script::new(&[Step::Exits(3)]), RestartPolicy::Never);
    assert_eq!(played.outcome.stop, Some(StopReason::InitFailed));
    assert!(played.outcome.over);
    let init = played.containers[0].status();
    assert!(matches!(
        init.state,
        ContainerState::Terminated { exit_code: 3, message: Some(ref m), .. } if m == "exit three"
    ));
    // The app never started.
    assert!(matches!(
        played.containers[1].status().state,
        ContainerState::Waiting { .. }
    ));
    assert_eq!(played.script.starts.lock().unwrap().len(), 1);
}

#[test]
fn sidecars_outlive_the_app_and_stop_after_it_in_reverse_order() {
    let pod = vec![
        with_hook((spec("side-a"), Role::Sidecar), HookKind::PreStop, "bye-a"),
        (spec("side-b"), Role::Sidecar),
        app("app"),
    ];
    let played = play_pod(
        pod,
        Script::new(&[Step::EndsOnTerm, Step::EndsOnTerm, Step::Exits(0)]),
        RestartPolicy::Never,
    );
    // The app completed; the sidecars were stopped: b first, then a
    // (after its preStop).
    assert_eq!(played.outcome.stop, Some(StopReason::Completed));
    assert_eq!(
        *played.script.signals.lock().unwrap(),
        [
            ("side-b".to_string(), StopSignal::Term),
            ("side-a".to_string(), StopSignal::Term),
        ]
    );
    assert_eq!(
        *played.script.hooks.lock().unwrap(),
        [("side-a".to_string(), "bye-a".to_string())]
    );
    assert_eq!(terminated(&played.containers[2]), (0, None));
}

#[test]
fn post_start_gates_running_and_the_next_container() {
    let pod = vec![
        with_hook(app("first"), HookKind::PostStart, "warm-up"),
        app("second"),
    ];
    let played = play_pod(
        pod,
        Script::new(&[Step::EndsOnTerm, Step::EndsOnTerm]),
        RestartPolicy::Always,
    );
    // The hook ended before the second container was started.
    assert_eq!(
        *played.script.trace.lock().unwrap(),
        ["start first", "hook first warm-up", "start second"]
    );
}

#[test]
fn a_failed_post_start_kills_the_run_and_the_policy_restarts_it() {
    let pod = vec![with_hook(app("app"), HookKind::PostStart, "fail-once")];
    let played = play_pod(
        pod,
        Script::new(&[Step::EndsOnTerm, Step::Exits(0)]),
        RestartPolicy::OnFailure,
    );
    use EventType::{Normal, Warning};
    let s = summary(&played.events);
    assert!(
        s.contains(&(Warning, "FailedPostStartHook", "hook failed", 1)),
        "{s:?}"
    );
    assert!(
        s.contains(&(Normal, "Killing", "FailedPostStartHook", 1)),
        "{s:?}"
    );
    assert_eq!(runs(&played.script), [0, 1]);
}

#[test]
fn a_liveness_failure_restarts_the_container() {
    let mut c = app("app");
    c.0.liveness_probe = Some(Probe::with_defaults(ProbeAction::TcpSocket {
        host: None,
        port: 80,
    }));
    let script = Script::new(&[Step::EndsOnTerm, Step::EndsOnTerm]);
    script
        .probe_plan
        .lock()
        .unwrap()
        .push(("app".into(), 0, ProbeKind::Liveness, false));
    let played = play_pod(vec![c], script, RestartPolicy::Always);
    use EventType::Normal;
    let s = summary(&played.events);
    assert!(
        s.contains(&(
            Normal,
            "Killing",
            "Container app failed liveness probe, will be restarted",
            1
        )),
        "{s:?}"
    );
    assert_eq!(runs(&played.script), [0, 1]);
    assert_eq!(played.containers[0].status().restart_count, 1);
}

#[test]
fn readiness_and_startup_drive_ready_and_started() {
    let mut c = app("app");
    c.0.startup_probe = Some(Probe::with_defaults(ProbeAction::TcpSocket {
        host: None,
        port: 80,
    }));
    c.0.readiness_probe = c.0.startup_probe.clone();
    let log = Arc::new(EventLog::new());
    let container = new_container(c.0, &log);
    let (mut sync, _rx, _) = loop_over(&container, &log, &[Step::EndsOnTerm], None);
    sync.sync();
    let now = || {
        let s = container.status();
        (s.started, s.ready)
    };
    assert_eq!(now(), (false, false));
    let result = |probe, success| Input::ProbeResult {
        container: 0,
        run: 0,
        probe,
        success,
    };
    // Readiness before startup passed does not make it ready.
    sync.handle(result(ProbeKind::Readiness, true));
    assert_eq!(now(), (false, false));
    sync.handle(result(ProbeKind::Startup, true));
    assert_eq!(now(), (true, false));
    sync.handle(result(ProbeKind::Readiness, true));
    assert_eq!(now(), (true, true));
    sync.handle(result(ProbeKind::Readiness, false));
    assert_eq!(now(), (true, false));
    // A result about another run changes nothing.
    sync.handle(Input::ProbeResult {
        container: 0,
        run: 7,
        probe: ProbeKind::Readiness,
        success: true,
    });
    assert_eq!(now(), (true, false));
}

#[test]
fn stale_and_unknown_inputs_change_nothing() {
    let log = Arc::new(EventLog::new());
    let c = Arc::new(crate::container::tests::container(&log));
    c.set_process_started("2024-01-01T00:00:00Z".into(), info(), false);
    let (mut sync, _rx, _) = loop_over(&c, &log, &[], None);
    let running = Phase::Running { run: 3 };
    sync.state.containers[0].phase = running;
    let before = (c.status(), log.watch(u64::MAX, 0, Duration::ZERO).1);
    let exit = RunExit {
        code: 1,
        signal: None,
        oom_killed: false,
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
        // Timers and results for what is not waiting for them.
        Input::BackOffExpired { container: 0 },
        Input::BackOffExpired { container: 9 },
        Input::KillDeadline {
            container: 0,
            run: 3,
        },
        Input::KillWaitExpired {
            container: 0,
            run: 3,
        },
        Input::HookDone {
            container: 0,
            run: 2,
            hook: HookKind::PostStart,
            result: Ok(()),
        },
        Input::ProbeResult {
            container: 9,
            run: 3,
            probe: ProbeKind::Liveness,
            success: false,
        },
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

#[test]
fn the_active_deadline_fails_the_pod() {
    let played = {
        let log = Arc::new(EventLog::new());
        let c = new_container(spec("app"), &log);
        let (mut sync, rx, outcome) =
            loop_over(&c, &log, &[Step::EndsOnTerm], Some(Duration::from_secs(5)));
        sync.sync();
        let deadline = sync.take_earliest().expect("the deadline's timer");
        assert_eq!(deadline.input, Input::ActiveDeadline);
        sync.handle(deadline.input);
        sync.sync();
        let exit = rx.recv_timeout(LONG).expect("the run ends on SIGTERM");
        sync.handle(exit);
        sync.sync();
        assert!(sync.is_over());
        (c, log, outcome.get())
    };
    let (c, log, outcome) = played;
    assert_eq!(outcome.stop, Some(StopReason::DeadlineExceeded));
    assert!(matches!(
        c.status().state,
        ContainerState::Terminated { ref reason, .. } if reason == "DeadlineExceeded"
    ));
    let (events, _) = log.watch(0, 0, Duration::ZERO);
    assert!(events
        .iter()
        .any(|e| e.reason == "DeadlineExceeded" && e.container.is_none()));
}
