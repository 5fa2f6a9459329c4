//! Containers of the container-level API (`CreateContainer`,
//! `StartContainer`, `RemoveContainer`, `StatsContainer`,
//! `UpdateContainer`; protocol 2.2), for a CRI-style client such as a
//! containerd shim. Each is an OCI runtime spec from the client, checked
//! and bound to the pod's sandbox, run by the same launcher as the pod's
//! containers. They live here, apart from the pod's containers, under ids
//! of their own, with no restart policy: the client drives them.
//!
//! The registry holds at most [`MAX_CONTAINERS`]. A stop of the sandbox
//! stops them too (TERM, the grace period, KILL) and refuses new ones.

mod container;
mod id;

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use oci_spec::runtime::LinuxResources;
use podvm_proto::{ContainerLog, CreateContainer};

use crate::cgroup::resources::{self, ResourceError};
use crate::cgroup::CgroupDir;
use crate::console::say;
use crate::container::launch::LaunchContext;
use crate::oci::{self, check::check, sandbox, SpecError};
use crate::rootfs::{RootfsError, RunLayers};
use container::Parts;
pub use container::{CriContainer, Phase};

/// Most containers of this API at once.
pub const MAX_CONTAINERS: usize = 64;
/// How long containers get to end after SIGKILL when the sandbox stops.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// The agent-kept log's file in the container's directory.
const AGENT_LOG: &str = "container.log";

/// Why a container call failed.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    #[error(
        "invalid container id {0:?} (letters and digits joined by single '.', '_' or '-', \
         at most 76 characters)"
    )]
    BadId(String),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("no container with id {0:?}")]
    NotFound(String),
    #[error("too many containers (at most {MAX_CONTAINERS})")]
    TooMany,
    #[error("there is no sandbox: CreateSandbox comes first")]
    NoSandbox,
    #[error("the sandbox is stopped")]
    SandboxStopped,
    #[error("oci_spec: {0}")]
    Spec(#[from] SpecError),
    #[error("resources: {0}")]
    Resources(#[from] ResourceError),
    #[error("rootfs: {0}")]
    Rootfs(#[from] RootfsError),
    #[error("log_path {}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {id} is {phase}")]
    WrongPhase { id: String, phase: Phase },
    #[error("starting container {id}: {message}")]
    Start { id: String, message: String },
    #[error("invalid signal number {0}")]
    BadSignal(u32),
    #[error("{0}")]
    Internal(String),
}

#[derive(Default)]
struct Table {
    live: HashMap<String, Arc<CriContainer>>,
    /// Ids being created (counted against the limit).
    creating: HashSet<String>,
    /// The sandbox is stopping: nothing new is created or started.
    stopping: bool,
}

/// See the module documentation.
#[derive(Default)]
pub struct CriContainers {
    table: Mutex<Table>,
}

/// Gives back an id reserved for a creation, however it ends.
struct Reservation<'a> {
    registry: &'a CriContainers,
    id: String,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.registry.lock().creating.remove(&self.id);
    }
}

/// What a creation made so far, undone unless it is kept.
struct Undo {
    dir: PathBuf,
    cgroup: Option<CgroupDir>,
    keep: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.keep {
            if let Some(cgroup) = &self.cgroup {
                cgroup.remove();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Decodes `linux.resources` JSON, naming the field where it fails.
pub fn parse_resources(json: &[u8]) -> Result<LinuxResources, CriError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed: Result<LinuxResources, _> = serde_path_to_error::deserialize(&mut de);
    parsed
        .map_err(|e| SpecError::Decode(format!("{}: {}", e.path(), e.inner())))
        .and_then(|r| {
            de.end()
                .map(|()| r)
                .map_err(|e| SpecError::Decode(format!("after the resources: {e}")))
        })
        .map_err(CriError::Spec)
}

impl CriContainers {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The container with this id.
    pub fn get(&self, id: &str) -> Result<Arc<CriContainer>, CriError> {
        self.lock()
            .live
            .get(id)
            .cloned()
            .ok_or_else(|| CriError::NotFound(id.to_string()))
    }

    /// Whether there is a container with this id.
    pub fn contains(&self, id: &str) -> bool {
        self.lock().live.contains_key(id)
    }

    fn reserve(&self, id: &str) -> Result<Reservation<'_>, CriError> {
        if !id::is_valid(id) {
            return Err(CriError::BadId(id.to_string()));
        }
        let mut table = self.lock();
        if table.stopping {
            return Err(CriError::SandboxStopped);
        }
        if table.live.contains_key(id) || table.creating.contains(id) {
            return Err(CriError::AlreadyExists(id.to_string()));
        }
        if table.live.len() + table.creating.len() >= MAX_CONTAINERS {
            return Err(CriError::TooMany);
        }
        table.creating.insert(id.to_string());
        Ok(Reservation {
            registry: self,
            id: id.to_string(),
        })
    }

    /// Creates a container in the sandbox `ctx` describes: the spec is
    /// decoded, checked and bound to the sandbox, the image's root found,
    /// the overlay layers and the cgroup made (with the spec's limits).
    pub fn create(&self, ctx: &LaunchContext<'_>, req: CreateContainer) -> Result<(), CriError> {
        let reservation = self.reserve(&req.container_id)?;
        let id = reservation.id.clone();
        let mut spec = oci::parse(&req.oci_spec)?;
        check(&spec)?;
        let lower = ctx.images.lower_dir(&req.rootfs)?;

        let name = id::dir_name(&id);
        let dir = ctx.containers_dir.join(&name);
        let mut undo = Undo {
            dir: dir.clone(),
            cgroup: None,
            keep: false,
        };
        let _ = std::fs::remove_dir_all(&dir);
        let layers = RunLayers::create(ctx.containers_dir, &name, 0)?;
        let cgroup = ctx
            .cgroups
            .map(|c| c.create(&name))
            .transpose()
            .map_err(|e| CriError::Internal(format!("creating the container's cgroup: {e}")))?;
        undo.cgroup = cgroup.clone();
        sandbox::bind(
            &mut spec,
            &ctx.sandbox_refs(),
            ctx.cgroups.and_then(|c| c.relative_path(&name)),
        );
        if let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
            resources::apply(cgroup.as_ref(), r)?;
        }
        let log_path = match req.log {
            ContainerLog::File(path) => path,
            ContainerLog::Agent => dir.join(AGENT_LOG),
        };
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| CriError::Log {
                path: log_path.clone(),
                source,
            })?;
        let container = Arc::new(CriContainer::new(Parts {
            id: id.clone(),
            dir,
            spec,
            log_path,
            cgroup,
            lower,
            layers,
        }));
        let mut table = self.lock();
        if table.stopping {
            return Err(CriError::SandboxStopped);
        }
        table.live.insert(id, container);
        undo.keep = true;
        drop(table);
        drop(reservation);
        Ok(())
    }

    /// Starts a created container.
    pub fn start(&self, id: &str) -> Result<(), CriError> {
        let container = {
            let table = self.lock();
            if table.stopping {
                return Err(CriError::SandboxStopped);
            }
            table
                .live
                .get(id)
                .cloned()
                .ok_or_else(|| CriError::NotFound(id.to_string()))?
        };
        container.start()
    }

    /// Sends signal number `signal` to a container's init process.
    pub fn signal(&self, id: &str, signal: u32) -> Result<(), CriError> {
        let sig = i32::try_from(signal)
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .ok_or(CriError::BadSignal(signal))?;
        self.get(id)?.signal(sig)
    }

    /// Forgets a container that does not run, with what it holds.
    pub fn remove(&self, id: &str) -> Result<(), CriError> {
        let container = self.get(id)?;
        container.dispose()?;
        let mut table = self.lock();
        if table
            .live
            .get(id)
            .is_some_and(|c| Arc::ptr_eq(c, &container))
        {
            table.live.remove(id);
        }
        Ok(())
    }

    /// The sandbox stops: no new containers; running ones get SIGTERM,
    /// `grace`, then SIGKILL.
    pub fn stop_all(&self, grace: Duration) {
        let containers: Vec<Arc<CriContainer>> = {
            let mut table = self.lock();
            table.stopping = true;
            table.live.values().cloned().collect()
        };
        let active = |c: &CriContainer| matches!(c.phase(), Phase::Starting | Phase::Running);
        for c in containers.iter().filter(|c| active(c)) {
            let _ = c.signal(Signal::SIGTERM);
        }
        wait_until_stopped(&containers, Instant::now() + grace, active);
        for c in containers.iter().filter(|c| active(c)) {
            let _ = c.signal(Signal::SIGKILL);
        }
        if !wait_until_stopped(&containers, Instant::now() + KILL_WAIT, active) {
            say!("containers did not end after SIGKILL");
        }
    }
}

/// Waits until no container is `active`, or `deadline`; whether none is.
fn wait_until_stopped(
    containers: &[Arc<CriContainer>],
    deadline: Instant,
    active: impl Fn(&CriContainer) -> bool,
) -> bool {
    for c in containers {
        while active(c) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let seen = c.wake().current();
            if active(c) {
                c.wake()
                    .wait_past(seen, left.min(Duration::from_millis(200)));
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_json_errors_name_the_field() {
        let r = parse_resources(br#"{"memory":{"limit":1048576}}"#).unwrap();
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(1_048_576));
        let e = parse_resources(br#"{"cpu":{"shares":"many"}}"#).unwrap_err();
        assert!(e.to_string().contains("cpu.shares"), "{e}");
        assert!(parse_resources(b"[").is_err());
    }

    #[test]
    fn ids_are_checked_and_unknown_ids_not_found() {
        let registry = CriContainers::default();
        assert!(matches!(registry.reserve("../x"), Err(CriError::BadId(_))));
        let held = registry.reserve("c1").unwrap();
        assert!(matches!(
            registry.reserve("c1"),
            Err(CriError::AlreadyExists(_))
        ));
        drop(held);
        assert!(registry.reserve("c1").is_ok());
        assert!(matches!(registry.get("nope"), Err(CriError::NotFound(_))));
        assert!(matches!(registry.start("nope"), Err(CriError::NotFound(_))));
        assert!(matches!(
            registry.remove("nope"),
            Err(CriError::NotFound(_))
        ));
        assert!(matches!(
            registry.signal("nope", 0),
            Err(CriError::BadSignal(0))
        ));
        assert!(matches!(
            registry.signal("nope", 9),
            Err(CriError::NotFound(_))
        ));
        registry.stop_all(Duration::ZERO);
        assert!(matches!(
            registry.reserve("c2"),
            Err(CriError::SandboxStopped)
        ));
    }
}
