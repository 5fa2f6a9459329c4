//! `CreateSandbox`, `GetSandboxStatus`, `StopSandbox` and `Shutdown`.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::Shutdown;
use podvm_proto::convert::sandbox_from_pb;
use podvm_proto::pb::agent as pb;
use ttrpc::{Code, TtrpcContext};

use super::limits::connection_of;
use super::status::{rpc_error, status};
use super::OnShutdown;
use crate::agent::Agent;

/// Converts, checks and creates the sandbox.
pub fn create(agent: &Agent, req: pb::CreateSandboxRequest) -> ttrpc::Result<pb::Empty> {
    let spec = req
        .sandbox
        .into_option()
        .ok_or_else(|| rpc_error(Code::INVALID_ARGUMENT, "sandbox: Required value"))?;
    let spec =
        sandbox_from_pb(spec, "sandbox").map_err(|e| rpc_error(Code::INVALID_ARGUMENT, e))?;
    agent.create_sandbox(spec).map_err(status)?;
    Ok(pb::Empty::default())
}

pub fn get_status(agent: &Agent) -> pb::SandboxStatus {
    pb::SandboxStatus::from(&agent.status())
}

pub fn stop(agent: &Agent, req: &pb::StopSandboxRequest) -> pb::Empty {
    agent.stop_sandbox(Duration::from_secs(req.grace_period_seconds));
    pb::Empty::default()
}

/// Answers `Shutdown` and then shuts the agent down.
///
/// The answer is queued when the handler returns; the shutdown thread
/// waits for the connection to end, which ttrpc reports only after every
/// reply on it was written. Shutting the connection's reading side makes
/// it end right away instead of when the client hangs up.
pub fn shutdown(ctx: &TtrpcContext, on_shutdown: &OnShutdown) -> ttrpc::Result<pb::Empty> {
    let connection = connection_of(ctx);
    let on_shutdown = Arc::clone(on_shutdown);
    std::thread::Builder::new()
        .name("shutdown".into())
        .spawn(move || on_shutdown(connection))
        .map_err(|e| rpc_error(Code::INTERNAL, format!("cannot start shutting down: {e}")))?;
    // The descriptor is the connection's own, open while this call runs.
    let _ = nix::sys::socket::shutdown(ctx.fd, Shutdown::Read);
    Ok(pb::Empty::default())
}
