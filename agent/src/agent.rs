//! The request handlers: thin wrappers that check the agent's state, call
//! into the pod, and map failures to protocol error codes.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use podvm_proto::{
    ErrorCode, FrameError, Request, Response, SandboxSpec, SandboxStatus, PROTOCOL_VERSION,
};

use crate::cgroup::Cgroups;
use crate::conn::Conn;
use crate::console::say;
use crate::pod::Pod;
use crate::rundir::RunDir;
use crate::{exec_serve, log_serve, validate};

/// Longest grace period `Shutdown` gives containers.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the connection thread does after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    /// The reply to `Shutdown` was sent: stop everything and go down.
    Shutdown,
}

/// The agent's state.
pub struct Agent {
    run: RunDir,
    cgroups: Option<Cgroups>,
    /// Held through CreateSandbox, StopSandbox and Shutdown; `true` once a
    /// sandbox was created.
    lifecycle: Mutex<bool>,
    pod: RwLock<Option<Arc<Pod>>>,
}

impl Agent {
    pub fn new(run: RunDir, cgroups: Option<Cgroups>) -> Self {
        Agent {
            run,
            cgroups,
            lifecycle: Mutex::new(false),
            pod: RwLock::new(None),
        }
    }

    fn pod(&self) -> Option<Arc<Pod>> {
        self.pod
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Handles one request, writing its reply (or replies) to `conn`.
    pub fn handle(&self, request: Request, conn: &mut Conn) -> Result<After, FrameError> {
        match request {
            Request::Check => conn.send(&Response::Health {
                agent_version: env!("CARGO_PKG_VERSION").into(),
                protocol: PROTOCOL_VERSION,
            })?,
            Request::CreateSandbox { sandbox } => conn.send(&self.create_sandbox(*sandbox))?,
            Request::Status => conn.send(&Response::Status {
                status: Box::new(self.status()),
            })?,
            Request::Logs {
                container,
                follow,
                tail_lines,
            } => match self
                .pod()
                .as_ref()
                .and_then(|p| p.container(&container).cloned())
            {
                Some(c) => log_serve::serve(conn, &c, tail_lines, follow)?,
                None => conn.send(&not_found(&container))?,
            },
            Request::Exec {
                container,
                argv,
                stdin,
            } => {
                match self
                    .pod()
                    .as_ref()
                    .and_then(|p| p.container(&container).cloned())
                {
                    Some(c) => exec_serve::serve(conn, &c, argv, stdin)?,
                    None => conn.send(&not_found(&container))?,
                }
            }
            Request::StopSandbox {
                grace_period_seconds,
            } => {
                self.stop_sandbox(Duration::from_secs(grace_period_seconds.min(24 * 3600)));
                conn.send(&Response::Ok)?;
            }
            Request::Shutdown => {
                conn.send(&Response::Ok)?;
                return Ok(After::Shutdown);
            }
        }
        Ok(After::Continue)
    }

    fn status(&self) -> SandboxStatus {
        let mut status = self.pod().map(|p| p.status()).unwrap_or_default();
        status.agent_rss_kib = own_rss_kib();
        status
    }

    fn create_sandbox(&self, spec: SandboxSpec) -> Response {
        let mut created = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *created {
            return Response::error(
                ErrorCode::FailedPrecondition,
                "a sandbox was already created",
            );
        }
        if let Err(why) = validate::check(&spec) {
            return Response::error(ErrorCode::BadRequest, why);
        }
        say!("creating sandbox {}/{}", spec.namespace, spec.name);
        let pod = match Pod::create(self.run.clone(), self.cgroups.clone(), spec) {
            Ok(pod) => pod,
            Err(e) => {
                say!("sandbox setup failed: {e}");
                crate::mountinfo::unmount_tree(&self.run.sandbox());
                return Response::error(ErrorCode::Internal, e.to_string());
            }
        };
        *created = true;
        *self.pod.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&pod));
        pod.start_containers();
        Response::Ok
    }

    fn stop_sandbox(&self, grace: Duration) {
        let _guard = self
            .lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(pod) = self.pod() {
            say!("stopping sandbox {}/{}", pod.spec.namespace, pod.spec.name);
            pod.stop(grace);
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
    }
}

/// The agent's resident set size (`VmRSS` in /proc/self/status), in KiB.
fn own_rss_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn not_found(container: &str) -> Response {
    Response::error(
        ErrorCode::NotFound,
        format!("no container named {container:?}"),
    )
}
