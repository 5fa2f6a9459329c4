//! One container of the pod: its spec, its current state in Kubernetes'
//! terms, and what the agent needs to signal it or exec in it.
//!
//! All state changes go through the methods here, which bump the
//! container's [`Wake`] so log followers and the stop logic notice them.

pub mod config;
mod expand;
pub mod launch;
pub mod spec;
mod user;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use podvm_proto::{ContainerSpec, ContainerState, ContainerStatus};

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
    restart_count: u32,
    running: Option<RunningInfo>,
    /// It will not run again and all its output is in the log.
    finished: bool,
    /// The pod is stopping: no (re)starts any more.
    stopping: bool,
}

/// See the module documentation.
pub struct Container {
    pub spec: ContainerSpec,
    pub wake: Arc<Wake>,
    pub log_path: PathBuf,
    runtime: Mutex<Runtime>,
}

impl Container {
    /// A container waiting to be created.
    pub fn new(spec: ContainerSpec, log_path: PathBuf, container_id: String) -> Self {
        Container {
            spec,
            wake: Arc::new(Wake::default()),
            log_path,
            runtime: Mutex::new(Runtime {
                container_id,
                state: ContainerState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last_state: None,
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

    fn change(&self, f: impl FnOnce(&mut Runtime)) {
        f(&mut self.lock());
        self.wake.notify();
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

    /// Marks the pod as stopping; returns the PID to signal, if running.
    pub fn request_stop(&self) -> Option<i32> {
        let mut rt = self.lock();
        rt.stopping = true;
        let pid = rt.running.as_ref().map(|r| r.pid);
        drop(rt);
        self.wake.notify();
        pid
    }

    /// Records that the container runs. Returns false when a stop was
    /// requested meanwhile (the caller then kills it at once).
    pub fn set_running(&self, started_at: String, info: RunningInfo) -> bool {
        let mut stopping = false;
        self.change(|rt| {
            rt.state = ContainerState::Running { started_at };
            rt.running = Some(info);
            stopping = rt.stopping;
        });
        !stopping
    }

    /// Records how the current run ended.
    pub fn set_terminated(&self, state: ContainerState) {
        self.change(|rt| {
            rt.state = state;
            rt.running = None;
        });
    }

    /// The container could not be created and will not be retried.
    pub fn set_create_error(&self, message: String) {
        self.change(|rt| {
            rt.state = ContainerState::Waiting {
                reason: "CreateContainerError".into(),
                message: Some(message),
            };
            rt.finished = true;
        });
    }

    /// No further runs: the log is complete.
    pub fn mark_finished(&self) {
        self.change(|rt| rt.finished = true);
    }

    /// The last run's end becomes `last_state`; the container waits in
    /// CrashLoopBackOff with `message`.
    pub fn enter_backoff(&self, message: String) {
        self.change(|rt| {
            let ended = std::mem::replace(
                &mut rt.state,
                ContainerState::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: Some(message),
                },
            );
            rt.last_state = Some(ended);
        });
    }

    /// Stopped while backing off: the last run's end is the final state.
    pub fn finish_after_backoff(&self) {
        self.change(|rt| {
            if let (ContainerState::Waiting { .. }, Some(last)) = (&rt.state, &rt.last_state) {
                rt.state = last.clone();
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
