//! One container of the pod: its spec, its current state in Kubernetes'
//! terms ([`state`]), and what the agent needs to signal it or exec in it.
//!
//! This is the container's published record: RPCs read it (status, exec,
//! logs) and only the pod's sync loop (`controller`) writes it, through the
//! methods here, one per transition. Each bumps the container's [`Wake`] so
//! log followers notice it, moves the pod's status generation on when the
//! Kubernetes status changed, and records the event kubelet records at that
//! point.

pub mod config;
mod expand;
pub mod launch;
pub mod spec;
pub mod state;
pub mod termination;
mod user;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use podvm_proto::{ContainerSpec, ContainerStatus};

use crate::controller::input::HookKind;
use crate::controller::state::KillReason;
use crate::events::kubelet::{backoff_message, ContainerEvent};
use crate::events::EventLog;
use crate::ids::now_rfc3339;
use crate::wake::Wake;
use config::ProcessConfig;
use state::{RunExit, State, Terminated, TerminatedReason, WaitingReason};

/// What is needed to reach a running container.
#[derive(Debug, Clone)]
pub struct RunningInfo {
    /// The container's PID 1 in the agent's PID namespace.
    pub pid: i32,
    pub cgroup: Option<crate::cgroup::CgroupDir>,
    pub process: ProcessConfig,
}

/// The container's changing part.
#[derive(Debug)]
struct Record {
    container_id: String,
    state: State,
    last_state: Option<State>,
    /// The `last_state` a back-off replaced, restored if the pod stops
    /// during the back-off (the last run's end becomes the state again).
    last_state_before_backoff: Option<State>,
    restart_count: u32,
    running: Option<RunningInfo>,
    /// The current run ended and all its output is in its log.
    run_ended: bool,
    /// When the live run's process started (it is `Running` only once
    /// its postStart hook ended).
    process_started_at: Option<String>,
    /// Kubernetes `ready` and `started`.
    ready: bool,
    started: bool,
    /// It will not run again and all its output is in the log.
    finished: bool,
}

/// The parts of a container's Kubernetes status that change.
#[derive(Debug, PartialEq)]
struct StatusParts {
    container_id: String,
    state: State,
    last_state: Option<State>,
    restart_count: u32,
    ready: bool,
    started: bool,
}

impl Record {
    fn status_parts(&self) -> StatusParts {
        StatusParts {
            container_id: self.container_id.clone(),
            state: self.state.clone(),
            last_state: self.last_state.clone(),
            restart_count: self.restart_count,
            ready: self.ready,
            started: self.started,
        }
    }
}

/// Why a run could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateFailure {
    /// Its configuration cannot become a runtime spec (kubelet's
    /// `CreateContainerConfigError`).
    Config(String),
    /// The runtime could not create it (`CreateContainerError`).
    Runtime(String),
}

impl CreateFailure {
    pub fn message(&self) -> &str {
        match self {
            CreateFailure::Config(m) | CreateFailure::Runtime(m) => m,
        }
    }

    fn reason(&self) -> WaitingReason {
        match self {
            CreateFailure::Config(_) => WaitingReason::CreateContainerConfigError,
            CreateFailure::Runtime(_) => WaitingReason::CreateContainerError,
        }
    }
}

/// `exit_code` of a container that could not be started (containerd's).
pub const START_ERROR_EXIT_CODE: i32 = 128;

/// See the module documentation.
pub struct Container {
    pub spec: ContainerSpec,
    pub wake: Arc<Wake>,
    /// Where its runs' logs are (`<run>.log`).
    logs_dir: PathBuf,
    events: Arc<EventLog>,
    record: Mutex<Record>,
}

impl Container {
    /// A container waiting to be created (for `waiting`: kubelet's
    /// `ContainerCreating`, or `PodInitializing` for an app container of a
    /// pod with init containers); its events and status changes go to
    /// `events`.
    pub fn new(
        spec: ContainerSpec,
        logs_dir: PathBuf,
        container_id: String,
        events: Arc<EventLog>,
        waiting: WaitingReason,
    ) -> Self {
        Container {
            spec,
            wake: Arc::new(Wake::default()),
            logs_dir,
            events,
            record: Mutex::new(Record {
                container_id,
                state: State::waiting(waiting),
                last_state: None,
                last_state_before_backoff: None,
                restart_count: 0,
                running: None,
                run_ended: false,
                process_started_at: None,
                ready: false,
                started: false,
                finished: false,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a state change; announces a status change if there was one.
    fn change(&self, f: impl FnOnce(&mut Record)) {
        let mut record = self.lock();
        let before = record.status_parts();
        f(&mut record);
        let status_changed = record.status_parts() != before;
        drop(record);
        self.wake.notify();
        if status_changed {
            self.events.status_changed();
        }
    }

    /// Records a kubelet event about this container.
    fn record(&self, event: ContainerEvent<'_>) {
        self.events.record(
            event.event_type(),
            event.reason(),
            event.message(self.name()),
            Some(self.name()),
        );
    }

    /// The Kubernetes status of the container.
    pub fn status(&self) -> ContainerStatus {
        let record = self.lock();
        ContainerStatus {
            name: self.spec.name.clone(),
            container_id: record.container_id.clone(),
            image: self.spec.image.clone(),
            image_id: self.spec.image_id.clone(),
            state: (&record.state).into(),
            last_state: record.last_state.as_ref().map(Into::into),
            restart_count: record.restart_count,
            ready: record.ready,
            started: record.started,
        }
    }

    /// The folder of its runs' logs.
    pub fn logs_dir(&self) -> &std::path::Path {
        &self.logs_dir
    }

    /// The log of run `run` (CRI format).
    pub fn log_of(&self, run: u32) -> PathBuf {
        self.logs_dir.join(format!("{run}.log"))
    }

    /// The latest run: the one running, or the last one that ran (runs
    /// are numbered by restart count, as kubelet names its log files).
    pub fn current_run(&self) -> u32 {
        self.lock().restart_count
    }

    /// The log of the latest run.
    pub fn current_log(&self) -> PathBuf {
        self.log_of(self.current_run())
    }

    /// Whether run `run` is over and all its output is in its log.
    pub fn run_over(&self, run: u32) -> bool {
        let record = self.lock();
        run < record.restart_count || (run == record.restart_count && record.run_ended)
    }

    /// How to reach the container, if it is running.
    pub fn running(&self) -> Option<RunningInfo> {
        self.lock().running.clone()
    }

    /// Whether it will never run again and its log is complete.
    #[cfg(test)]
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// A run is about to be created from the container's image, which is on
    /// the machine.
    pub fn image_present(&self) {
        self.change(|r| {
            if r.state.is_waiting_for(WaitingReason::PodInitializing) {
                r.state = State::waiting(WaitingReason::ContainerCreating);
            }
        });
        self.record(ContainerEvent::Pulled {
            image: &self.spec.image,
        });
    }

    /// The run was created and is about to be started.
    pub fn created(&self) {
        self.record(ContainerEvent::Created);
    }

    /// The run's process started at `started_at`; it is `Running` now,
    /// or once its postStart hook ended if `post_start` (kubelet records
    /// `Started` either way).
    pub fn set_process_started(&self, started_at: String, info: RunningInfo, post_start: bool) {
        self.change(|r| {
            if !post_start {
                r.state = State::Running {
                    started_at: started_at.clone(),
                };
            }
            r.process_started_at = Some(started_at);
            r.running = Some(info);
        });
        self.record(ContainerEvent::Started);
    }

    /// The run's postStart hook ended well: it is `Running`.
    pub fn post_start_done(&self) {
        self.change(|r| {
            if let Some(started_at) = r.process_started_at.clone() {
                r.state = State::Running { started_at };
            }
        });
    }

    /// Its startup probe passed (or it has none): Kubernetes `started`.
    pub fn set_started(&self, started: bool) {
        self.change(|r| r.started = started);
    }

    /// Its readiness: Kubernetes `ready`.
    pub fn set_ready(&self, ready: bool) {
        self.change(|r| r.ready = ready);
    }

    /// The running container is being killed for `reason` (kubelet's
    /// `Killing` event).
    pub fn killing(&self, reason: KillReason) {
        self.change(|r| r.ready = false);
        self.record(ContainerEvent::Killing { reason });
    }

    /// A lifecycle hook failed (`FailedPostStartHook`, `FailedPreStopHook`).
    pub fn hook_failed(&self, hook: HookKind, message: &str) {
        self.record(ContainerEvent::HookFailed { hook, message });
    }

    /// The running run's process ended; `message` is its termination
    /// message; `deadline_exceeded`: it was killed because the pod's
    /// `activeDeadlineSeconds` passed.
    pub fn set_exited(&self, exit: &RunExit, message: Option<String>, deadline_exceeded: bool) {
        self.change(|r| {
            let started_at = r.process_started_at.take();
            let reason = if exit.oom_killed {
                TerminatedReason::OOMKilled
            } else if deadline_exceeded && exit.code != 0 {
                TerminatedReason::DeadlineExceeded
            } else {
                TerminatedReason::of_exit(exit.code)
            };
            r.state = State::Terminated(Terminated {
                exit_code: exit.code,
                signal: exit.signal,
                reason,
                message,
                started_at,
                finished_at: exit.finished_at.clone(),
            });
            r.running = None;
            r.run_ended = true;
            r.ready = false;
            r.started = false;
        });
    }

    /// The created run could not be started: it ends at once with
    /// containerd's `StartError`.
    pub fn set_start_error(&self, message: String) {
        self.change(|r| {
            r.state = State::Terminated(Terminated {
                exit_code: START_ERROR_EXIT_CODE,
                signal: None,
                reason: TerminatedReason::StartError,
                message: Some(message.clone()),
                started_at: None,
                finished_at: now_rfc3339(),
            });
            r.running = None;
            r.run_ended = true;
            r.process_started_at = None;
        });
        self.record(ContainerEvent::Failed { error: &message });
    }

    /// The run could not be created (it is tried again, unless the pod
    /// stops).
    pub fn set_create_error(&self, failure: CreateFailure) {
        let message = failure.message().to_string();
        self.change(|r| {
            r.state = State::Waiting {
                reason: failure.reason(),
                message: Some(message.clone()),
            };
            r.run_ended = true;
        });
        self.record(ContainerEvent::Failed { error: &message });
    }

    /// The last run's end becomes `last_state`; the container waits in
    /// CrashLoopBackOff for `delay` before it restarts. `pod` is kubelet's
    /// pod description (`events::kubelet::pod_desc`).
    pub fn enter_backoff(&self, delay: Duration, pod: &str) {
        self.change(|r| {
            let waiting = State::Waiting {
                reason: WaitingReason::CrashLoopBackOff,
                message: Some(backoff_message(delay, &self.spec.name, pod)),
            };
            if r.state.is_waiting_for(WaitingReason::RunContainerError) {
                // The failed start is `last_state` already.
                r.state = waiting;
            } else {
                let ended = std::mem::replace(&mut r.state, waiting);
                r.last_state_before_backoff = r.last_state.replace(ended);
            }
        });
        self.record(ContainerEvent::BackOff { pod });
    }

    /// The last run could not be started and will be restarted: kubelet
    /// shows `Waiting{RunContainerError}` with the start error, the failed
    /// start (`StartError`) as `last_state`.
    pub fn start_failed_restarting(&self) {
        self.change(|r| {
            let State::Terminated(ended) = &r.state else {
                return;
            };
            if ended.reason != TerminatedReason::StartError {
                return;
            }
            let waiting = State::Waiting {
                reason: WaitingReason::RunContainerError,
                message: ended.message.clone(),
            };
            let ended = std::mem::replace(&mut r.state, waiting);
            r.last_state_before_backoff = r.last_state.replace(ended);
        });
    }

    /// A new run (a new container, in Kubernetes' terms) is being created.
    pub fn begin_restart(&self, container_id: String) {
        self.change(|r| {
            if matches!(r.state, State::Terminated(_)) {
                r.last_state = Some(r.state.clone());
            }
            r.state = State::waiting(WaitingReason::ContainerCreating);
            r.last_state_before_backoff = None;
            r.restart_count += 1;
            r.run_ended = false;
            r.container_id = container_id;
        });
    }

    /// It will not run again: the log is complete. Stopped in a back-off,
    /// the last run's end is the final state again.
    pub fn finish(&self) {
        self.change(|r| {
            if r.state.is_waiting_for(WaitingReason::CrashLoopBackOff)
                || r.state.is_waiting_for(WaitingReason::RunContainerError)
            {
                if let Some(last) = r.last_state.take() {
                    r.state = last;
                    r.last_state = r.last_state_before_backoff.take();
                }
            }
            r.finished = true;
        });
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use podvm_proto::{ContainerState, EventType, ImageConfig, RootfsSource};

    /// A container spec whose image is never looked at.
    pub fn spec(name: &str) -> ContainerSpec {
        ContainerSpec::new(
            name,
            "busybox:1.36",
            "sha256:00",
            ImageConfig::default(),
            RootfsSource::Directory {
                path: PathBuf::from("/nonexistent"),
            },
        )
    }

    /// A container "app" whose events go to `events`.
    pub fn container(events: &Arc<EventLog>) -> Container {
        Container::new(
            spec("app"),
            PathBuf::from("/nonexistent/app"),
            "0".repeat(64),
            Arc::clone(events),
            WaitingReason::ContainerCreating,
        )
    }

    /// What a run that nothing signals looks like.
    pub fn info() -> RunningInfo {
        RunningInfo {
            // Not a possible PID: nothing here signals it.
            pid: i32::MAX,
            cgroup: None,
            process: ProcessConfig::default(),
        }
    }

    fn generation(events: &EventLog) -> u64 {
        events.watch(u64::MAX, 0, Duration::ZERO).1
    }

    fn exit(code: i32) -> RunExit {
        RunExit {
            code,
            signal: None,
            oom_killed: false,
            finished_at: "2024-01-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn only_status_changes_move_the_generation() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        assert_eq!(generation(&events), 1);
        c.image_present();
        c.created();
        assert_eq!(generation(&events), 1);
        c.set_process_started("2024-01-01T00:00:00Z".into(), info(), false);
        assert_eq!(generation(&events), 2);
        c.killing(KillReason::PodStopping);
        assert_eq!(generation(&events), 2);
        c.set_exited(&exit(0), None, false);
        assert_eq!(generation(&events), 3);
        c.finish();
        assert_eq!(generation(&events), 3);
        c.set_start_error("boom".into());
        assert_eq!(generation(&events), 4);
    }

    #[test]
    fn an_exit_keeps_the_start_time_and_names_the_reason() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        c.set_process_started("2024-01-01T00:00:00Z".into(), info(), false);
        assert!(c.running().is_some());
        c.set_exited(&exit(2), None, false);
        assert!(c.running().is_none());
        assert_eq!(
            c.status().state,
            ContainerState::Terminated {
                exit_code: 2,
                signal: None,
                reason: "Error".into(),
                message: None,
                started_at: Some("2024-01-01T00:00:00Z".into()),
                finished_at: "2024-01-01T00:00:01Z".into(),
            }
        );
    }

    #[test]
    fn finishing_in_a_backoff_restores_the_last_end() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        c.set_process_started("2024-01-01T00:00:00Z".into(), info(), false);
        c.set_exited(&exit(1), None, false);
        c.begin_restart("1".repeat(64));
        c.set_process_started("2024-01-01T00:00:02Z".into(), info(), false);
        c.set_exited(&exit(3), None, false);
        c.enter_backoff(Duration::from_secs(10), "p_ns(u)");
        let waiting = c.status();
        assert!(matches!(
            &waiting.state,
            ContainerState::Waiting { reason, message: Some(m) }
                if reason == "CrashLoopBackOff" && m.starts_with("back-off 10s ")
        ));
        assert!(matches!(
            waiting.last_state,
            Some(ContainerState::Terminated { exit_code: 3, .. })
        ));
        c.finish();
        let done = c.status();
        assert!(c.is_finished());
        assert!(matches!(
            done.state,
            ContainerState::Terminated { exit_code: 3, .. }
        ));
        assert!(matches!(
            done.last_state,
            Some(ContainerState::Terminated { exit_code: 1, .. })
        ));
        assert_eq!(done.restart_count, 1);
    }

    #[test]
    fn a_failed_start_waits_as_run_container_error_then_backs_off() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        c.set_start_error("exec: \"app\": not found".into());
        c.start_failed_restarting();
        let waiting = c.status();
        assert_eq!(
            waiting.state,
            ContainerState::Waiting {
                reason: "RunContainerError".into(),
                message: Some("exec: \"app\": not found".into()),
            }
        );
        assert!(matches!(
            &waiting.last_state,
            Some(ContainerState::Terminated { reason, exit_code: 128, .. }) if reason == "StartError"
        ));
        c.enter_backoff(Duration::from_secs(10), "p_ns(u)");
        let backing_off = c.status();
        assert!(matches!(
            &backing_off.state,
            ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff"
        ));
        assert_eq!(backing_off.last_state, waiting.last_state);
        // Stopped then, the failed start is the final state again.
        c.finish();
        let done = c.status();
        assert_eq!(Some(done.state), waiting.last_state);
        assert_eq!(done.last_state, None);
        // Any other end is left as it is.
        let other = container(&events);
        other.set_process_started("2024-01-01T00:00:00Z".into(), info(), false);
        other.set_exited(&exit(1), None, false);
        let before = other.status();
        other.start_failed_restarting();
        assert_eq!(other.status(), before);
    }

    #[test]
    fn killing_is_kubelets_event() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        c.killing(KillReason::PodStopping);
        let (recorded, _) = events.watch(0, 0, Duration::ZERO);
        let last = recorded.last().expect("an event");
        assert_eq!(
            (last.event_type, last.reason.as_str(), last.message.as_str()),
            (EventType::Normal, "Killing", "Stopping container app")
        );
    }
}
