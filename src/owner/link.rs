//! The owner's seams to the guest: [`AgentLink`] (the calls an owner makes
//! on the agent) and [`AgentDialer`] (how it reaches the agent of a VM), so
//! the boot and watch logic runs against fakes in unit tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use podvm_proto::client::QUICK_CALL;
use podvm_proto::{AgentConn, ClientError, EventBatch, SandboxSpec, SandboxStatus};

use crate::agent_client::AgentClient;
use crate::hypervisor::VmRecord;

/// What the owner asks of a pod's agent.
pub trait AgentLink: Send + Sync {
    fn create_sandbox(&self, spec: &SandboxSpec, timeout: Duration) -> Result<(), ClientError>;
    fn status(&self) -> Result<SandboxStatus, ClientError>;
    /// The event watch (a long poll).
    fn events(&self, after_seq: u64, status_generation: u64) -> Result<EventBatch, ClientError>;
    fn stop_sandbox(&self, grace: Duration, timeout: Duration) -> Result<(), ClientError>;
    fn shutdown(&self) -> Result<(), ClientError>;
}

impl AgentLink for AgentConn {
    fn create_sandbox(&self, spec: &SandboxSpec, timeout: Duration) -> Result<(), ClientError> {
        AgentConn::create_sandbox(self, spec, timeout)
    }

    fn status(&self) -> Result<SandboxStatus, ClientError> {
        AgentConn::status(self, QUICK_CALL)
    }

    fn events(&self, after_seq: u64, status_generation: u64) -> Result<EventBatch, ClientError> {
        AgentConn::events(self, after_seq, status_generation)
    }

    fn stop_sandbox(&self, grace: Duration, timeout: Duration) -> Result<(), ClientError> {
        AgentConn::stop_sandbox(self, grace, timeout)
    }

    fn shutdown(&self) -> Result<(), ClientError> {
        AgentConn::shutdown(self, QUICK_CALL)
    }
}

/// How an owner reaches the agent of a VM.
pub trait AgentDialer: Send + Sync {
    /// Connects (retrying while the guest boots, giving up at `deadline`
    /// or when the VM died) and does the version exchange.
    fn dial(&self, vm: &VmRecord, deadline: Instant) -> anyhow::Result<Arc<dyn AgentLink>>;
}

/// The real dialer: hybrid vsock through the VM's Unix socket.
pub struct VsockDialer;

impl AgentDialer for VsockDialer {
    fn dial(&self, vm: &VmRecord, deadline: Instant) -> anyhow::Result<Arc<dyn AgentLink>> {
        let alive = || vm.is_running();
        let (conn, _version) = AgentClient::new(&vm.vsock_uds).connect(deadline, &alive)?;
        Ok(Arc::new(conn))
    }
}
