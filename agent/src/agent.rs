//! The agent's state and its operations, whatever the transport: the one
//! sandbox (created once), its status and events, the execs, and the
//! stop/shutdown sequence. The RPC layer (`rpc/`) maps calls and errors
//! onto these.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use podvm_proto::{CreateContainer, SandboxSpec, SandboxStatus};

use crate::cgroup::Cgroups;
use crate::console::say;
use crate::container::Container;
use crate::cri::{CriContainers, CriError};
use crate::events::EventLog;
use crate::exec::Execs;
use crate::pod::Pod;
use crate::rundir::RunDir;
use crate::validate;

/// Longest grace period `Shutdown` gives containers.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Longest grace period `StopSandbox` accepts.
pub const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("a sandbox was already created")]
    AlreadyCreated,
    #[error("invalid sandbox: {0}")]
    Invalid(String),
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("no container named {0:?}")]
    NoContainer(String),
}

/// See the module documentation.
pub struct Agent {
    run: RunDir,
    cgroups: Option<Cgroups>,
    /// Held through CreateSandbox, StopSandbox and Shutdown; `true` once a
    /// sandbox was created.
    lifecycle: Mutex<bool>,
    pod: RwLock<Option<Arc<Pod>>>,
    events: Arc<EventLog>,
    execs: Execs,
    /// The containers of the container-level API (protocol 2.2).
    cri: CriContainers,
}

impl Agent {
    pub fn new(run: RunDir, cgroups: Option<Cgroups>) -> Self {
        Agent {
            run,
            cgroups,
            lifecycle: Mutex::new(false),
            pod: RwLock::new(None),
            events: Arc::new(EventLog::new()),
            execs: Execs::default(),
            cri: CriContainers::default(),
        }
    }

    fn pod(&self) -> Option<Arc<Pod>> {
        self.pod
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The pod's event log and status generation.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    pub fn execs(&self) -> &Execs {
        &self.execs
    }

    /// The containers of the container-level API.
    pub fn cri(&self) -> &CriContainers {
        &self.cri
    }

    /// Creates a container of the container-level API in the sandbox.
    pub fn create_container(&self, req: CreateContainer) -> Result<(), CriError> {
        let pod = self.pod().ok_or(CriError::NoSandbox)?;
        if !pod.status().sandbox_ready {
            return Err(CriError::SandboxStopped);
        }
        self.cri.create(&pod.launch_context(), req)
    }

    /// The container of that name in the sandbox.
    pub fn container(&self, name: &str) -> Result<Arc<Container>, AgentError> {
        self.pod()
            .and_then(|p| p.container(name).cloned())
            .ok_or_else(|| AgentError::NoContainer(name.to_string()))
    }

    /// The sandbox's status (empty before one was created), with the
    /// agent's own memory use.
    pub fn status(&self) -> SandboxStatus {
        let mut status = self.pod().map(|p| p.status()).unwrap_or_default();
        status.agent_rss_kib = own_rss_kib();
        status
    }

    /// Checks `spec`, sets up the sandbox and starts its containers; only
    /// once per agent.
    pub fn create_sandbox(&self, spec: SandboxSpec) -> Result<(), AgentError> {
        let mut created = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *created {
            return Err(AgentError::AlreadyCreated);
        }
        validate::check(&spec).map_err(|why| AgentError::Invalid(why.to_string()))?;
        say!("creating sandbox {}/{}", spec.namespace, spec.name);
        let pod = Pod::create(
            self.run.clone(),
            self.cgroups.clone(),
            spec,
            Arc::clone(&self.events),
        )
        .map_err(|e| {
            say!("sandbox setup failed: {e}");
            crate::mountinfo::unmount_tree(&self.run.sandbox());
            AgentError::Setup(e.to_string())
        })?;
        *created = true;
        *self.pod.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&pod));
        pod.start_containers();
        Ok(())
    }

    /// Stops every container: preStop, the stop signal, `grace` (at most
    /// [`MAX_GRACE`]), SIGKILL; then the sandbox. A grace period of zero
    /// is an immediate stop (SIGKILL, no preStop), as `kubectl delete
    /// --grace-period=0 --force` asks.
    pub fn stop_sandbox(&self, grace: Duration) {
        let _guard = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pod) = self.pod() {
            say!("stopping sandbox {}/{}", pod.spec.namespace, pod.spec.name);
            self.cri.stop_all(grace.min(MAX_GRACE));
            pod.stop(grace.min(MAX_GRACE), grace.is_zero());
        }
    }

    /// Stops the pod with a short grace period and unmounts the run dir.
    pub fn shut_down(&self) {
        let grace = self.pod().map_or(SHUTDOWN_GRACE, |p| {
            Duration::from_secs(p.spec.termination_grace_period_seconds).min(SHUTDOWN_GRACE)
        });
        self.stop_sandbox(grace);
        let _guard = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.run.teardown();
        if let Some(cgroups) = &self.cgroups {
            cgroups.remove_subtree();
        }
    }
}

/// The agent's resident set size (`VmRSS` in /proc/self/status), in KiB.
fn own_rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
