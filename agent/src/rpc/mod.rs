//! The agent's API server: ttrpc (sync) serving the `Health` and `Agent`
//! services of `proto/protos/agent.proto` on the listener, with the limits
//! of [`limits`]. The handlers here are one line each; the work is in the
//! files named after each group of calls, which call into the agent.

mod containers;
mod events;
mod exec;
mod health;
mod limits;
mod listener;
mod logs;
mod sandbox;
mod status;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use podvm_proto::client::LONG_POLL_MAX;
use podvm_proto::pb::agent as pb;
use podvm_proto::pb::agent_ttrpc::{create_agent, create_health};
use ttrpc::TtrpcContext;

use crate::agent::Agent;
use crate::logs::StdStream;
pub use limits::Connection;
pub use listener::Listener;

/// Idle workers ttrpc keeps per connection (it adds one per call in
/// progress): the fewest it allows, as connections are mostly idle.
const WORKERS_MIN: usize = 1;
const WORKERS_DEFAULT: usize = 2;
const WORKERS_MAX: usize = 3;

/// What the agent does to shut down: called on its own thread, with the
/// connection whose `Shutdown` was answered (`None` for a signal), after
/// which the process ends.
pub type OnShutdown = Arc<dyn Fn(Option<Arc<Connection>>) + Send + Sync>;

/// How long a long poll may hold this call: [`LONG_POLL_MAX`], or half the
/// client's own deadline when that is shorter (so the answer comes before
/// the client gives up).
fn hold(ctx: &TtrpcContext) -> Duration {
    hold_for(ctx.timeout_nano)
}

/// [`hold`] for a client deadline of `timeout_nano` (0: none).
fn hold_for(timeout_nano: i64) -> Duration {
    match u64::try_from(timeout_nano) {
        Ok(nanos) if nanos > 0 => LONG_POLL_MAX.min(Duration::from_nanos(nanos / 2)),
        _ => LONG_POLL_MAX,
    }
}

/// The `Agent` service.
struct AgentService {
    agent: Arc<Agent>,
    on_shutdown: OnShutdown,
}

impl podvm_proto::pb::agent_ttrpc::Agent for AgentService {
    fn create_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: pb::CreateSandboxRequest,
    ) -> ttrpc::Result<pb::Empty> {
        sandbox::create(&self.agent, req)
    }

    fn get_sandbox_status(
        &self,
        _ctx: &TtrpcContext,
        _req: pb::GetSandboxStatusRequest,
    ) -> ttrpc::Result<pb::SandboxStatus> {
        Ok(sandbox::get_status(&self.agent))
    }

    fn stop_sandbox(
        &self,
        _ctx: &TtrpcContext,
        req: pb::StopSandboxRequest,
    ) -> ttrpc::Result<pb::Empty> {
        Ok(sandbox::stop(&self.agent, &req))
    }

    fn shutdown(&self, ctx: &TtrpcContext, _req: pb::ShutdownRequest) -> ttrpc::Result<pb::Empty> {
        sandbox::shutdown(ctx, &self.on_shutdown)
    }

    fn exec_process(
        &self,
        _ctx: &TtrpcContext,
        req: pb::ExecProcessRequest,
    ) -> ttrpc::Result<pb::ExecProcessResponse> {
        exec::start(&self.agent, req)
    }

    fn write_stdin(
        &self,
        ctx: &TtrpcContext,
        req: pb::WriteStreamRequest,
    ) -> ttrpc::Result<pb::WriteStreamResponse> {
        exec::write_stdin(&self.agent, &req, hold(ctx))
    }

    fn tty_win_resize(
        &self,
        _ctx: &TtrpcContext,
        req: pb::TtyWinResizeRequest,
    ) -> ttrpc::Result<pb::Empty> {
        exec::resize(&self.agent, &req)
    }

    fn close_stdin(
        &self,
        _ctx: &TtrpcContext,
        req: pb::CloseStdinRequest,
    ) -> ttrpc::Result<pb::Empty> {
        exec::close_stdin(&self.agent, &req)
    }

    fn read_stdout(
        &self,
        ctx: &TtrpcContext,
        req: pb::ReadStreamRequest,
    ) -> ttrpc::Result<pb::ReadStreamResponse> {
        exec::read(&self.agent, &req, StdStream::Stdout, hold(ctx))
    }

    fn read_stderr(
        &self,
        ctx: &TtrpcContext,
        req: pb::ReadStreamRequest,
    ) -> ttrpc::Result<pb::ReadStreamResponse> {
        exec::read(&self.agent, &req, StdStream::Stderr, hold(ctx))
    }

    fn signal_process(
        &self,
        _ctx: &TtrpcContext,
        req: pb::SignalProcessRequest,
    ) -> ttrpc::Result<pb::Empty> {
        exec::signal(&self.agent, &req)
    }

    fn wait_process(
        &self,
        ctx: &TtrpcContext,
        req: pb::WaitProcessRequest,
    ) -> ttrpc::Result<pb::WaitProcessResponse> {
        exec::wait(&self.agent, &req, hold(ctx))
    }

    fn create_container(
        &self,
        _ctx: &TtrpcContext,
        req: pb::CreateContainerRequest,
    ) -> ttrpc::Result<pb::Empty> {
        containers::create(&self.agent, req)
    }

    fn start_container(
        &self,
        _ctx: &TtrpcContext,
        req: pb::StartContainerRequest,
    ) -> ttrpc::Result<pb::Empty> {
        containers::start(&self.agent, &req)
    }

    fn remove_container(
        &self,
        _ctx: &TtrpcContext,
        req: pb::RemoveContainerRequest,
    ) -> ttrpc::Result<pb::Empty> {
        containers::remove(&self.agent, &req)
    }

    fn stats_container(
        &self,
        _ctx: &TtrpcContext,
        req: pb::StatsContainerRequest,
    ) -> ttrpc::Result<pb::StatsContainerResponse> {
        containers::stats(&self.agent, &req)
    }

    fn update_container(
        &self,
        _ctx: &TtrpcContext,
        req: pb::UpdateContainerRequest,
    ) -> ttrpc::Result<pb::Empty> {
        containers::update(&self.agent, &req)
    }

    fn read_log(
        &self,
        ctx: &TtrpcContext,
        req: pb::ReadLogRequest,
    ) -> ttrpc::Result<pb::ReadLogResponse> {
        logs::read(&self.agent, req, hold(ctx))
    }

    fn get_events(
        &self,
        ctx: &TtrpcContext,
        req: pb::GetEventsRequest,
    ) -> ttrpc::Result<pb::GetEventsResponse> {
        Ok(events::get(&self.agent, &req, hold(ctx)))
    }
}

/// Serves the API on `listener` until the process ends; returns only if
/// the server cannot start.
pub fn serve(listener: Listener, agent: Arc<Agent>, on_shutdown: OnShutdown) -> anyhow::Result<()> {
    let limits = Arc::new(limits::Limits::default());
    let health = create_health(Arc::new(health::HealthService));
    let service = create_agent(Arc::new(AgentService { agent, on_shutdown }));
    let mut server = ttrpc::Server::new()
        .add_listener(listener.into_raw_fd())
        .context("handing the listener to the ttrpc server")?
        .register_service(limits::guard(health, &limits))
        .register_service(limits::guard(service, &limits))
        .set_accept_hook(limits::ConnectionLimit::new(limits))
        .set_thread_count_min(WORKERS_MIN)
        .set_thread_count_default(WORKERS_DEFAULT)
        .set_thread_count_max(WORKERS_MAX);
    server.start().context("starting the ttrpc server")?;
    // The server runs on its own threads; the process ends in `on_shutdown`.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_respects_the_client_deadline() {
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap();
        assert_eq!(hold_for(0), LONG_POLL_MAX);
        assert_eq!(hold_for(-5), LONG_POLL_MAX);
        assert_eq!(
            hold_for(nanos(Duration::from_secs(4))),
            Duration::from_secs(2)
        );
        assert_eq!(hold_for(nanos(Duration::from_secs(600))), LONG_POLL_MAX);
    }
}
