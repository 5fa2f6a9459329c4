//! One container of the pod: its spec, its current state in Kubernetes'
//! terms, and what the agent needs to signal it or exec in it.
//!
//! All state changes go through the methods here, one per transition: each
//! bumps the container's [`Wake`] so log followers and the stop logic notice
//! it, moves the pod's status generation on when the Kubernetes status
//! changed, and records the event kubelet records at that point.

pub mod config;
mod expand;
pub mod launch;
pub mod spec;
mod user;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use podvm_proto::{ContainerSpec, ContainerState, ContainerStatus};

use crate::events::kubelet::{backoff_message, ContainerEvent};
use crate::events::EventLog;
use crate::ids::now_rfc3339;
use crate::wake::Wake;
use config::ProcessConfig;

/// What is needed to reach a running container.
#[derive(Debug, Clone)]
pub struct RunningInfo {
    /// The container's PID 1 in the agent's PID namespace.
    pub pid: i32,
    pub cgroup: Option<PathBuf>,
    pub process: ProcessConfig,
}

#[derive(Debug)]
struct Runtime {
    container_id: String,
    state: ContainerState,
    last_state: Option<ContainerState>,
    /// The `last_state` a back-off replaced, restored if the pod stops
    /// during the back-off (the last run's end becomes the state again).
    last_state_before_backoff: Option<ContainerState>,
    restart_count: u32,
    running: Option<RunningInfo>,
    /// It will not run again and all its output is in the log.
    finished: bool,
    /// The pod is stopping: no (re)starts any more.
    stopping: bool,
}

/// The parts of a container's Kubernetes status that change.
#[derive(Debug, PartialEq)]
struct StatusParts {
    container_id: String,
    state: ContainerState,
    last_state: Option<ContainerState>,
    restart_count: u32,
}

impl Runtime {
    fn status_parts(&self) -> StatusParts {
        StatusParts {
            container_id: self.container_id.clone(),
            state: self.state.clone(),
            last_state: self.last_state.clone(),
            restart_count: self.restart_count,
        }
    }
}

/// `exit_code` of a container that could not be started (containerd's).
pub const START_ERROR_EXIT_CODE: i32 = 128;

/// See the module documentation.
pub struct Container {
    pub spec: ContainerSpec,
    pub wake: Arc<Wake>,
    pub log_path: PathBuf,
    events: Arc<EventLog>,
    runtime: Mutex<Runtime>,
}

impl Container {
    /// A container waiting to be created; its events and status changes go
    /// to `events`.
    pub fn new(
        spec: ContainerSpec,
        log_path: PathBuf,
        container_id: String,
        events: Arc<EventLog>,
    ) -> Self {
        Container {
            spec,
            wake: Arc::new(Wake::default()),
            log_path,
            events,
            runtime: Mutex::new(Runtime {
                container_id,
                state: ContainerState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last_state: None,
                last_state_before_backoff: None,
                restart_count: 0,
                running: None,
                finished: false,
                stopping: false,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    fn lock(&self) -> MutexGuard<'_, Runtime> {
        self.runtime.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a state change; announces a status change if there was one.
    fn change(&self, f: impl FnOnce(&mut Runtime)) {
        let mut rt = self.lock();
        let before = rt.status_parts();
        f(&mut rt);
        let status_changed = rt.status_parts() != before;
        drop(rt);
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
        let rt = self.lock();
        ContainerStatus {
            name: self.spec.name.clone(),
            container_id: rt.container_id.clone(),
            image: self.spec.image.clone(),
            image_id: self.spec.image_id.clone(),
            state: rt.state.clone(),
            last_state: rt.last_state.clone(),
            restart_count: rt.restart_count,
        }
    }

    /// How to reach the container, if it is running.
    pub fn running(&self) -> Option<RunningInfo> {
        self.lock().running.clone()
    }

    /// Whether it will never run again and its log is complete.
    pub fn is_finished(&self) -> bool {
        self.lock().finished
    }

    pub fn is_stopping(&self) -> bool {
        self.lock().stopping
    }

    /// Marks the pod as stopping; returns the PID to signal, if running
    /// (kubelet's `Killing` event is then recorded).
    pub fn request_stop(&self) -> Option<i32> {
        let mut rt = self.lock();
        rt.stopping = true;
        let pid = rt.running.as_ref().map(|r| r.pid);
        drop(rt);
        self.wake.notify();
        if pid.is_some() {
            self.record(ContainerEvent::Killing);
        }
        pid
    }

    /// A run is about to be created from the container's image, which is on
    /// the machine.
    pub fn image_present(&self) {
        self.record(ContainerEvent::Pulled {
            image: &self.spec.image,
        });
    }

    /// The run was created and is about to be started.
    pub fn created(&self) {
        self.record(ContainerEvent::Created);
    }

    /// Records that the container runs. Returns false when a stop was
    /// requested meanwhile: the caller then kills it at once (and the
    /// `Killing` event is recorded here, as no stop saw it running).
    pub fn set_running(&self, started_at: String, info: RunningInfo) -> bool {
        let mut stopping = false;
        self.change(|rt| {
            rt.state = ContainerState::Running { started_at };
            rt.running = Some(info);
            stopping = rt.stopping;
        });
        self.record(ContainerEvent::Started);
        if stopping {
            self.record(ContainerEvent::Killing);
        }
        !stopping
    }

    /// Records how the current run ended.
    pub fn set_terminated(&self, state: ContainerState) {
        self.change(|rt| {
            rt.state = state;
            rt.running = None;
        });
    }

    /// The created run could not be started: it ends at once with
    /// containerd's `StartError`.
    pub fn set_start_error(&self, message: String) {
        self.set_terminated(ContainerState::Terminated {
            exit_code: START_ERROR_EXIT_CODE,
            signal: None,
            reason: "StartError".into(),
            message: Some(message.clone()),
            started_at: None,
            finished_at: now_rfc3339(),
        });
        self.record(ContainerEvent::Failed { error: &message });
    }

    /// The container could not be created and will not be retried.
    pub fn set_create_error(&self, message: String) {
        self.change(|rt| {
            rt.state = ContainerState::Waiting {
                reason: "CreateContainerError".into(),
                message: Some(message.clone()),
            };
            rt.finished = true;
        });
        self.record(ContainerEvent::Failed { error: &message });
    }

    /// No further runs: the log is complete.
    pub fn mark_finished(&self) {
        self.change(|rt| rt.finished = true);
    }

    /// The last run's end becomes `last_state`; the container waits in
    /// CrashLoopBackOff for `delay` before it restarts. `pod` is kubelet's
    /// pod description (`events::kubelet::pod_desc`).
    pub fn enter_backoff(&self, delay: Duration, pod: &str) {
        self.change(|rt| {
            let ended = std::mem::replace(
                &mut rt.state,
                ContainerState::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(backoff_message(delay, &self.spec.name, pod)),
                },
            );
            rt.last_state_before_backoff = rt.last_state.replace(ended);
        });
        self.record(ContainerEvent::BackOff { pod });
    }

    /// Stopped while backing off: the last run's end is the final state.
    pub fn finish_after_backoff(&self) {
        self.change(|rt| {
            if matches!(rt.state, ContainerState::Waiting { .. }) {
                if let Some(last) = rt.last_state.take() {
                    rt.state = last;
                    rt.last_state = rt.last_state_before_backoff.take();
                }
            }
            rt.finished = true;
        });
    }

    /// A new run (a new container, in Kubernetes' terms) is being created.
    pub fn begin_restart(&self, container_id: String) {
        self.change(|rt| {
            if matches!(rt.state, ContainerState::Terminated { .. }) {
                rt.last_state = Some(rt.state.clone());
            }
            rt.state = ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            };
            rt.last_state_before_backoff = None;
            rt.restart_count += 1;
            rt.container_id = container_id;
        });
    }

    /// Sleeps up to `delay`; returns true if a stop was requested meanwhile.
    pub fn sleep_unless_stopped(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            let seen = self.wake.current();
            if self.is_stopping() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.wake.wait_past(seen, left);
        }
    }

    /// Waits up to `timeout` for the container to finish.
    pub fn wait_finished(&self, deadline: Instant) -> bool {
        loop {
            let seen = self.wake.current();
            if self.is_finished() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.wake
                .wait_past(seen, left.min(Duration::from_millis(200)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvm_proto::{EventType, ImageConfig, RootfsSource};

    fn container(events: &Arc<EventLog>) -> Container {
        let spec = ContainerSpec {
            name: "app".into(),
            image: "busybox".into(),
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
        };
        Container::new(
            spec,
            PathBuf::from("/nonexistent/app.log"),
            "0".repeat(64),
            Arc::clone(events),
        )
    }

    fn info() -> RunningInfo {
        RunningInfo {
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

    fn generation(events: &EventLog) -> u64 {
        events.watch(u64::MAX, 0, Duration::ZERO).1
    }

    #[test]
    fn only_status_changes_move_the_generation() {
        let events = Arc::new(EventLog::new());
        let c = container(&events);
        assert_eq!(generation(&events), 1);
        c.image_present();
        c.created();
        assert_eq!(generation(&events), 1);
        assert!(c.set_running("2024-01-01T00:00:00Z".into(), info()));
        assert_eq!(generation(&events), 2);
        c.mark_finished();
        assert_eq!(generation(&events), 2);
        c.set_start_error("boom".into());
        assert_eq!(generation(&events), 3);
    }

    #[test]
    fn killing_is_recorded_for_a_running_container_only() {
        let events = Arc::new(EventLog::new());
        let idle = container(&events);
        assert_eq!(idle.request_stop(), None);
        assert!(events.watch(0, 1, Duration::ZERO).0.is_empty());

        let running = container(&events);
        assert!(running.set_running("2024-01-01T00:00:00Z".into(), info()));
        assert_eq!(running.request_stop(), Some(i32::MAX));
        let (recorded, _) = events.watch(0, 0, Duration::ZERO);
        let last = recorded.last().expect("an event");
        assert_eq!(
            (last.event_type, last.reason.as_str(), last.message.as_str()),
            (EventType::Normal, "Killing", "Stopping container app")
        );
    }
}
