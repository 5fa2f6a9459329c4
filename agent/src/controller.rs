//! The per-container controller thread: runs the container, records how
//! each run ended, and restarts it according to the pod's restart policy
//! with kubelet's back-off, until the pod stops.
//!
//! Each attempt follows kubelet's steps, and the container records the
//! matching events as its state moves: image present (`Pulled`), create
//! (`Created`, or `Failed` and no retry), start (`Started`, or `Failed` and
//! a `StartError` run), exit, back-off (`BackOff`). What the steps do to the
//! machine is behind [`Runtime`]: the pod implements it, tests script it.

use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use podvm_proto::{ContainerState, RestartPolicy};

use crate::backoff::Backoff;
use crate::console::say;
use crate::container::launch::Exited;
use crate::container::{Container, RunningInfo};
use crate::ids::random_id;

/// Whether a run that ended with `exit_code` is restarted under `policy`.
pub fn restarts(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// Kubernetes' reason for a terminated container.
pub fn reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

/// What the controller's steps do outside the container's state.
pub trait Runtime {
    /// A run that was created and not yet started.
    type Created;
    /// A run whose process was started.
    type Run: Run;
    /// Creates a run (CRI CreateContainer); the error is the message of
    /// `CreateContainerError`.
    fn create(&self, container: &Container) -> Result<Self::Created, String>;
    /// Starts run number `run` (CRI StartContainer); the error is the
    /// message of the `StartError` termination.
    fn start(
        &self,
        container: &Container,
        created: Self::Created,
        run: u32,
    ) -> Result<Self::Run, String>;
    /// Waits out a restart back-off of `delay`; true if the pod started
    /// stopping meanwhile.
    fn back_off(&self, container: &Container, delay: Duration) -> bool;
}

/// A started run.
pub trait Run {
    /// How to reach it.
    fn info(&self) -> RunningInfo;
    /// When its process started (RFC 3339, UTC).
    fn started_at(&self) -> String;
    /// Kills it at once (the pod stopped while it was being started).
    fn kill(&self);
    /// Waits for it to end, with all its output logged.
    fn wait(self) -> Exited;
}

/// What the controller follows of the pod.
#[derive(Debug, Clone)]
pub struct PodPolicy {
    pub restart: RestartPolicy,
    /// kubelet's description of the pod (`events::kubelet::pod_desc`).
    pub pod: String,
}

/// Runs `container` until it is done for good; `first_attempt` is signalled
/// once its first start succeeded or failed.
pub fn run<R: Runtime>(
    runtime: &R,
    policy: &PodPolicy,
    container: &Container,
    first_attempt: Sender<()>,
) {
    let mut first_attempt = Some(first_attempt);
    let mut backoff = Backoff::default();
    let mut run_no = 0u32;
    loop {
        container.image_present();
        let created = match runtime.create(container) {
            Ok(created) => created,
            Err(message) => {
                say!(
                    "container {} could not be created: {message}",
                    container.name()
                );
                container.set_create_error(message);
                return;
            }
        };
        container.created();
        let exit_code = match runtime.start(container, created, run_no) {
            Err(message) => {
                say!("container {} failed to start: {message}", container.name());
                container.set_start_error(message);
                crate::container::START_ERROR_EXIT_CODE
            }
            Ok(started) => {
                let started_at = started.started_at();
                if !container.set_running(started_at.clone(), started.info()) {
                    started.kill();
                }
                if let Some(tx) = first_attempt.take() {
                    let _ = tx.send(());
                }
                let exited = started.wait();
                container.set_terminated(ContainerState::Terminated {
                    exit_code: exited.code,
                    signal: exited.signal,
                    reason: reason(exited.code).into(),
                    message: None,
                    started_at: Some(started_at),
                    finished_at: exited.finished_at,
                });
                exited.code
            }
        };
        if let Some(tx) = first_attempt.take() {
            let _ = tx.send(());
        }
        if container.is_stopping() || !restarts(policy.restart, exit_code) {
            container.mark_finished();
            return;
        }
        let delay = backoff.next(Instant::now());
        if !delay.is_zero() {
            container.enter_backoff(delay, &policy.pod);
        }
        if runtime.back_off(container, delay) {
            container.finish_after_backoff();
            return;
        }
        run_no += 1;
        let id = random_id().unwrap_or_else(|_| format!("{:064x}", u64::from(run_no)));
        container.begin_restart(id);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::sync::mpsc;
    use std::sync::Arc;

    use podvm_proto::{ContainerSpec, Event, EventType, ImageConfig, RootfsSource};

    use super::*;
    use crate::container::config::ProcessConfig;
    use crate::events::kubelet::pod_desc;
    use crate::events::EventLog;

    #[test]
    fn policies() {
        assert!(restarts(RestartPolicy::Always, 0));
        assert!(restarts(RestartPolicy::OnFailure, 3));
        assert!(!restarts(RestartPolicy::OnFailure, 0));
        assert!(!restarts(RestartPolicy::Never, 1));
        assert_eq!(reason(0), "Completed");
        assert_eq!(reason(137), "Error");
    }

    /// What one scripted attempt does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        /// Creating fails.
        CreateFails,
        /// Starting fails.
        StartFails,
        /// The process runs and exits with this code.
        Exits(i32),
        /// The pod stops while the process is being started; it is then
        /// killed and exits with 137.
        StoppedWhileStarting,
    }

    /// A runtime playing a script, one step per attempt; back-offs take no
    /// time, and the pod stops during the back-off after the last step.
    struct Script {
        steps: Vec<Step>,
        attempt: Cell<usize>,
        starts: RefCell<Vec<u32>>,
        backoffs: RefCell<Vec<Duration>>,
        kills: Rc<Cell<u32>>,
    }

    impl Script {
        fn new(steps: &[Step]) -> Script {
            Script {
                steps: steps.to_vec(),
                attempt: Cell::new(0),
                starts: RefCell::new(Vec::new()),
                backoffs: RefCell::new(Vec::new()),
                kills: Rc::new(Cell::new(0)),
            }
        }

        fn step(&self) -> Step {
            self.steps[self.attempt.get()]
        }
    }

    struct ScriptedRun {
        code: i32,
        kills: Rc<Cell<u32>>,
    }

    impl Runtime for Script {
        type Created = Step;
        type Run = ScriptedRun;

        fn create(&self, _: &Container) -> Result<Step, String> {
            match self.step() {
                Step::CreateFails => Err("no such image".into()),
                step => Ok(step),
            }
        }

        fn start(&self, container: &Container, step: Step, run: u32) -> Result<Self::Run, String> {
            self.starts.borrow_mut().push(run);
            self.attempt.set(self.attempt.get() + 1);
            let kills = Rc::clone(&self.kills);
            match step {
                Step::CreateFails => unreachable!("creation failed"),
                Step::StartFails => Err("exec: \"app\": not found".into()),
                Step::Exits(code) => Ok(ScriptedRun { code, kills }),
                Step::StoppedWhileStarting => {
                    container.request_stop();
                    Ok(ScriptedRun { code: 137, kills })
                }
            }
        }

        fn back_off(&self, container: &Container, delay: Duration) -> bool {
            self.backoffs.borrow_mut().push(delay);
            if self.attempt.get() == self.steps.len() {
                container.request_stop();
                return true;
            }
            false
        }
    }

    impl Run for ScriptedRun {
        fn info(&self) -> RunningInfo {
            RunningInfo {
                // Not a possible PID: nothing here signals it.
                pid: i32::MAX,
                cgroup: None,
                process: ProcessConfig {
                    argv: vec!["app".into()],
                    env: Vec::new(),
                    cwd: "/".into(),
                    uid: 0,
                    gid: 0,
                    groups: Vec::new(),
                },
            }
        }

        fn started_at(&self) -> String {
            "2024-01-01T00:00:00Z".into()
        }

        fn kill(&self) {
            self.kills.set(self.kills.get() + 1);
        }

        fn wait(self) -> Exited {
            Exited {
                code: self.code,
                signal: None,
                finished_at: "2024-01-01T00:00:01Z".into(),
            }
        }
    }

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "app".into(),
            image: "busybox:1.36".into(),
            image_id: "sha256:00".into(),
            image_config: ImageConfig::default(),
            rootfs: RootfsSource::Directory {
                path: PathBuf::from("/nonexistent"),
            },
            command: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            working_dir: None,
            run_as_user: None,
            run_as_group: None,
            supplemental_groups: Vec::new(),
        }
    }

    /// Runs the controller over `steps`; returns the container, every
    /// event in order, the final status generation and the script.
    fn play(steps: &[Step], restart: RestartPolicy) -> (Container, Vec<Event>, u64, Script) {
        let events = Arc::new(EventLog::new());
        let container = Container::new(
            spec(),
            PathBuf::from("/nonexistent/app.log"),
            "0".repeat(64),
            Arc::clone(&events),
        );
        let script = Script::new(steps);
        let policy = PodPolicy {
            restart,
            pod: pod_desc("web", "default", "uid-1"),
        };
        let (tx, rx) = mpsc::channel();
        run(&script, &policy, &container, tx);
        // Signalled once the first start was tried, never before.
        assert_eq!(
            rx.try_iter().count(),
            usize::from(steps[0] != Step::CreateFails)
        );
        assert!(container.is_finished());
        let (all, generation) = events.watch(0, 0, Duration::ZERO);
        (container, all, generation, script)
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

    #[test]
    fn crash_loop_events_come_in_order_and_fold() {
        let (container, events, generation, script) = play(
            &[Step::Exits(1), Step::Exits(1), Step::Exits(2)],
            RestartPolicy::Always,
        );
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&events),
            [
                (Normal, "Pulled", PULLED, 3),
                (Normal, "Created", "Created container: app", 3),
                (Normal, "Started", "Started container app", 3),
                (Warning, "BackOff", BACKOFF, 2),
            ]
        );
        // kubelet's back-off: immediate, then 10 s, then 20 s.
        assert_eq!(
            *script.backoffs.borrow(),
            [
                Duration::ZERO,
                Duration::from_secs(10),
                Duration::from_secs(20)
            ]
        );
        assert_eq!(*script.starts.borrow(), [0, 1, 2]);
        let status = container.status();
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
        // Every status change moved the generation on: per run Running and
        // Terminated, per back-off CrashLoopBackOff, per restart the new
        // run, and the final state restored when stopped in back-off.
        assert_eq!(generation, 1 + 3 * 2 + 2 + 2 + 1);
    }

    #[test]
    fn a_start_error_is_created_then_failed() {
        let (container, events, _, _) = play(&[Step::StartFails], RestartPolicy::Never);
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Normal, "Created", "Created container: app", 1),
                (Warning, "Failed", "Error: exec: \"app\": not found", 1),
            ]
        );
        assert!(matches!(
            container.status().state,
            ContainerState::Terminated { exit_code: 128, ref reason, .. } if reason == "StartError"
        ));
    }

    #[test]
    fn a_create_error_fails_before_created() {
        let (container, events, generation, script) =
            play(&[Step::CreateFails], RestartPolicy::Always);
        use EventType::{Normal, Warning};
        assert_eq!(
            summary(&events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Warning, "Failed", "Error: no such image", 1),
            ]
        );
        assert!(script.starts.borrow().is_empty());
        assert!(matches!(
            container.status().state,
            ContainerState::Waiting { ref reason, .. } if reason == "CreateContainerError"
        ));
        assert_eq!(generation, 2);
    }

    #[test]
    fn stopping_while_starting_kills_the_new_run() {
        let (container, events, _, script) =
            play(&[Step::StoppedWhileStarting], RestartPolicy::Always);
        use EventType::Normal;
        assert_eq!(
            summary(&events),
            [
                (Normal, "Pulled", PULLED, 1),
                (Normal, "Created", "Created container: app", 1),
                (Normal, "Started", "Started container app", 1),
                (Normal, "Killing", "Stopping container app", 1),
            ]
        );
        assert_eq!(script.kills.get(), 1);
        assert_eq!(container.status().restart_count, 0);
    }
}
