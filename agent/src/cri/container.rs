//! One container of the container-level API, through its states: created
//! (spec bound, root layers and cgroup ready), starting, running (its init
//! process, reached by exec and signals), stopped (its exit code). There is
//! no restart: the client drives the lifecycle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxResources, Spec};

use super::CriError;
use crate::cgroup::resources::{self, ResourceError};
use crate::cgroup::stats::CgroupStats;
use crate::cgroup::CgroupDir;
use crate::container::config::Overlay;
use crate::container::launch::{self, RunningContainer};
use crate::container::{RunningInfo, START_ERROR_EXIT_CODE};
use crate::logs::LogSink;
use crate::rootfs::RunLayers;
use crate::wake::Wake;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Created,
    Starting,
    Running,
    Stopped,
    Removed,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Created => "created",
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Stopped => "stopped",
            Phase::Removed => "removed",
        })
    }
}

enum State {
    /// Ready to start: the image's root and the run's overlay layers.
    Created {
        lower: PathBuf,
        layers: RunLayers,
    },
    Starting,
    Running(Box<RunningInfo>),
    /// The init process ended (or never started: `START_ERROR_EXIT_CODE`).
    Stopped {
        exit_code: i32,
    },
    Removed,
}

impl State {
    fn phase(&self) -> Phase {
        match self {
            State::Created { .. } => Phase::Created,
            State::Starting => Phase::Starting,
            State::Running(_) => Phase::Running,
            State::Stopped { .. } => Phase::Stopped,
            State::Removed => Phase::Removed,
        }
    }
}

/// What a created container is made of.
pub struct Parts {
    pub id: String,
    /// `<run>/containers/cri_<id>`: the bundle below it, the agent-kept log.
    pub dir: PathBuf,
    /// The checked spec, bound to the sandbox.
    pub spec: Spec,
    pub log_path: PathBuf,
    pub cgroup: Option<CgroupDir>,
    pub lower: PathBuf,
    pub layers: RunLayers,
}

/// See the module documentation.
pub struct CriContainer {
    pub id: String,
    dir: PathBuf,
    spec: Spec,
    log_path: PathBuf,
    cgroup: Option<CgroupDir>,
    wake: Arc<Wake>,
    state: Mutex<State>,
}

impl CriContainer {
    pub fn new(parts: Parts) -> Self {
        CriContainer {
            id: parts.id,
            dir: parts.dir,
            spec: parts.spec,
            log_path: parts.log_path,
            cgroup: parts.cgroup,
            wake: Arc::new(Wake::default()),
            state: Mutex::new(State::Created {
                lower: parts.lower,
                layers: parts.layers,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, state: State) {
        *self.lock() = state;
        self.wake.notify();
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase()
    }

    fn wrong_phase(&self, phase: Phase) -> CriError {
        CriError::WrongPhase {
            id: self.id.clone(),
            phase,
        }
    }

    /// Starts the init process (once); it runs until it exits, which a
    /// thread of its own records.
    pub fn start(self: &Arc<Self>) -> Result<(), CriError> {
        let (lower, layers) = {
            let mut state = self.lock();
            match std::mem::replace(&mut *state, State::Starting) {
                State::Created { lower, layers } => (lower, layers),
                other => {
                    let phase = other.phase();
                    *state = other;
                    return Err(self.wrong_phase(phase));
                }
            }
        };
        let sink = match LogSink::open(&self.log_path, Arc::clone(&self.wake)) {
            Ok(sink) => Arc::new(sink),
            Err(e) => {
                layers.remove();
                self.set(State::Stopped {
                    exit_code: START_ERROR_EXIT_CODE,
                });
                return Err(CriError::Start {
                    id: self.id.clone(),
                    message: format!("opening the log {}: {e}", self.log_path.display()),
                });
            }
        };
        let overlay = Overlay {
            lower,
            upper: layers.upper.clone(),
            work: layers.work.clone(),
        };
        match launch::launch(
            &self.id,
            &self.spec,
            layers,
            Some(overlay),
            self.cgroup.clone(),
            sink,
        ) {
            Ok(run) => self.running(run),
            Err(message) => {
                self.set(State::Stopped {
                    exit_code: START_ERROR_EXIT_CODE,
                });
                Err(CriError::Start {
                    id: self.id.clone(),
                    message,
                })
            }
        }
    }

    /// Records the started run and follows it to its end.
    fn running(self: &Arc<Self>, run: RunningContainer) -> Result<(), CriError> {
        let pid = run.pid;
        self.set(State::Running(Box::new(RunningInfo {
            pid: run.pid,
            cgroup: run.cgroup.clone(),
            process: run.process.clone(),
        })));
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("cri-{}", short(&self.id)))
            .spawn(move || {
                let exited = run.wait();
                me.set(State::Stopped {
                    exit_code: exited.code,
                });
            });
        if let Err(e) = spawned {
            // Nothing would see it end: it must not run.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            self.set(State::Stopped {
                exit_code: START_ERROR_EXIT_CODE,
            });
            return Err(CriError::Internal(format!(
                "cannot follow the container: {e}"
            )));
        }
        Ok(())
    }

    /// How to reach the init process, while it runs.
    pub fn running_info(&self) -> Option<RunningInfo> {
        match &*self.lock() {
            State::Running(info) => Some(RunningInfo::clone(info)),
            _ => None,
        }
    }

    /// The exit code once stopped.
    pub fn exit_code(&self) -> Option<i32> {
        match &*self.lock() {
            State::Stopped { exit_code } => Some(*exit_code),
            _ => None,
        }
    }

    /// Waits up to `hold` for the container to stop; its exit code.
    pub fn wait(&self, hold: Duration) -> Option<i32> {
        let deadline = Instant::now().checked_add(hold);
        loop {
            let seen = self.wake.current();
            if let Some(code) = self.exit_code() {
                return Some(code);
            }
            let left = deadline.map_or(hold, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() {
                return None;
            }
            self.wake.wait_past(seen, left);
        }
    }

    /// Sends `signal` to the init process; a stopped container ignores it,
    /// as `kill` does for a zombie.
    pub fn signal(&self, signal: Signal) -> Result<(), CriError> {
        let state = self.lock();
        match &*state {
            State::Running(info) => match kill(Pid::from_raw(info.pid), signal) {
                Ok(()) | Err(Errno::ESRCH) => Ok(()),
                Err(e) => Err(CriError::Internal(format!("signalling {}: {e}", self.id))),
            },
            State::Stopped { .. } => Ok(()),
            other => Err(self.wrong_phase(other.phase())),
        }
    }

    /// The usage its cgroup reports.
    pub fn stats(&self) -> CgroupStats {
        self.cgroup
            .as_ref()
            .map(CgroupDir::stats)
            .unwrap_or_default()
    }

    /// Sets limits on its cgroup.
    pub fn update(&self, r: &LinuxResources) -> Result<(), ResourceError> {
        resources::apply(self.cgroup.as_ref(), r)
    }

    /// Where its output is logged.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Bumped at every state change and log line.
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// Whether it will log no more.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase(), Phase::Stopped | Phase::Removed)
    }

    /// Removes what it holds: the layers of a run never started, its
    /// cgroup and its directory (with an agent-kept log). Refused while it
    /// runs.
    pub fn dispose(&self) -> Result<(), CriError> {
        let mut state = self.lock();
        match std::mem::replace(&mut *state, State::Removed) {
            State::Created { layers, .. } => layers.remove(),
            State::Stopped { .. } | State::Removed => {}
            other => {
                let phase = other.phase();
                *state = other;
                return Err(self.wrong_phase(phase));
            }
        }
        drop(state);
        self.wake.notify();
        if let Some(cgroup) = &self.cgroup {
            cgroup.remove();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// The start of an id, for thread names (at most 15 bytes on Linux).
fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}
