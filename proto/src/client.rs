//! A typed client of the agent API over any connected stream socket (a
//! Unix socket in host mode; the host's end of hybrid vsock after the
//! `CONNECT` line). One connection carries any number of concurrent calls:
//! ttrpc multiplexes them. Every call has a deadline; the long polls
//! (stream reads, logs, events) are answered by the agent within
//! [`LONG_POLL_MAX`] even when nothing happened, so a deadline above that
//! only fires on a dead peer.

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use protobuf::MessageField;
use ttrpc::context::{self, Context};

use crate::container::{ContainerStats, CreateContainer};
use crate::convert::{event_from_pb, sandbox_status_from_pb, ConvertError};
use crate::event::Event;
use crate::pb::agent as pb;
use crate::pb::agent_ttrpc::{AgentClient, HealthClient};
use crate::spec::SandboxSpec;
use crate::status::SandboxStatus;
use crate::version::{Compatibility, PROTOCOL_MAJOR, PROTOCOL_MINOR};

/// The longest the agent holds a long poll before answering "nothing yet".
pub const LONG_POLL_MAX: Duration = Duration::from_secs(10);
/// Deadline of a call that does not wait for anything in the guest.
pub const QUICK_CALL: Duration = Duration::from_secs(30);
/// Deadline of a long poll: the agent's hold plus slack for a slow host.
pub const POLL_CALL: Duration = Duration::from_secs(60);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection broke, timed out, or could not be set up.
    #[error("agent connection: {0}")]
    Transport(String),
    /// The agent answered with an error status.
    #[error("agent: {message} ({code:?})")]
    Rpc { code: ttrpc::Code, message: String },
    /// The agent speaks an incompatible major version.
    #[error("{0}")]
    Incompatible(String),
    /// The agent's answer does not make a valid value.
    #[error("invalid answer from the agent: {0}")]
    Invalid(#[from] ConvertError),
}

impl ClientError {
    /// The ttrpc status code of an error answer.
    pub fn code(&self) -> Option<ttrpc::Code> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<ttrpc::Error> for ClientError {
    fn from(e: ttrpc::Error) -> Self {
        match e {
            ttrpc::Error::RpcStatus(status) => ClientError::Rpc {
                code: status.code(),
                message: status.message().to_string(),
            },
            other => ClientError::Transport(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// What the agent said about itself in the version exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentVersion {
    pub protocol_major: u32,
    pub protocol_minor: u32,
    pub agent_version: String,
}

/// One chunk of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogChunk {
    /// Whole CRI log lines, byte-exact.
    pub data: Vec<u8>,
    pub next_offset: u64,
    /// Nothing more will come.
    pub end: bool,
}

/// What the event watch returned.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    pub events: Vec<Event>,
    pub status: SandboxStatus,
    pub status_generation: u64,
}

/// Which output stream of an exec'd process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

fn deadline(d: Duration) -> Context {
    context::with_duration(d)
}

/// A connection to one agent.
#[derive(Clone)]
pub struct AgentConn {
    health: HealthClient,
    agent: AgentClient,
}

impl AgentConn {
    /// Wraps a connected stream; no call is made.
    pub fn new(stream: UnixStream) -> Result<Self> {
        let client = ttrpc::Client::new(stream.into_raw_fd())?;
        Ok(AgentConn {
            health: HealthClient::new(client.clone()),
            agent: AgentClient::new(client),
        })
    }

    /// Wraps a connected stream and does the version exchange: an agent of
    /// another major version is refused, naming both versions.
    pub fn handshake(stream: UnixStream, client: &str) -> Result<(Self, AgentVersion)> {
        let conn = AgentConn::new(stream)?;
        let version = conn.version(client)?;
        if let Some(why) =
            Compatibility::of(version.protocol_major, version.protocol_minor).refusal("the agent")
        {
            return Err(ClientError::Incompatible(why));
        }
        Ok((conn, version))
    }

    /// The version exchange alone (no compatibility decision).
    pub fn version(&self, client: &str) -> Result<AgentVersion> {
        let reply = self.health.version(
            deadline(QUICK_CALL),
            &pb::VersionRequest {
                protocol_major: PROTOCOL_MAJOR,
                protocol_minor: PROTOCOL_MINOR,
                client: client.to_string(),
                ..Default::default()
            },
        )?;
        Ok(AgentVersion {
            protocol_major: reply.protocol_major,
            protocol_minor: reply.protocol_minor,
            agent_version: reply.agent_version,
        })
    }

    /// Whether the agent serves.
    pub fn check(&self, timeout: Duration) -> Result<bool> {
        let reply = self
            .health
            .check(deadline(timeout), &pb::CheckRequest::default())?;
        Ok(reply.status.enum_value() == Ok(pb::check_response::ServingStatus::SERVING))
    }

    /// Hands over the pod; returns once every container was started (or
    /// failed to).
    pub fn create_sandbox(&self, spec: &SandboxSpec, timeout: Duration) -> Result<()> {
        self.agent.create_sandbox(
            deadline(timeout),
            &pb::CreateSandboxRequest {
                sandbox: MessageField::some(pb::SandboxSpec::from(spec)),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    pub fn status(&self, timeout: Duration) -> Result<SandboxStatus> {
        let reply = self
            .agent
            .get_sandbox_status(deadline(timeout), &pb::GetSandboxStatusRequest::default())?;
        Ok(sandbox_status_from_pb(reply, "status")?)
    }

    /// Stops every container (TERM, `grace`, KILL); returns when they are.
    pub fn stop_sandbox(&self, grace: Duration, timeout: Duration) -> Result<()> {
        self.agent.stop_sandbox(
            deadline(timeout),
            &pb::StopSandboxRequest {
                grace_period_seconds: grace.as_secs(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Asks the agent to power the VM off (answered first).
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.agent
            .shutdown(deadline(timeout), &pb::ShutdownRequest::default())?;
        Ok(())
    }

    /// Starts `argv` in a running container; returns the exec id.
    pub fn exec(&self, container: &str, argv: &[String], stdin: bool) -> Result<String> {
        let reply = self.agent.exec_process(
            deadline(QUICK_CALL),
            &pb::ExecProcessRequest {
                container: container.to_string(),
                argv: argv.to_vec(),
                stdin,
                ..Default::default()
            },
        )?;
        Ok(reply.exec_id)
    }

    /// Starts `argv` on a terminal of `rows` x `cols` in a running
    /// container (stdin open; everything the process writes comes out of
    /// [`OutputStream::Stdout`]); returns the exec id. Since protocol 2.1.
    pub fn exec_on_terminal(
        &self,
        container: &str,
        argv: &[String],
        rows: u16,
        cols: u16,
    ) -> Result<String> {
        let reply = self.agent.exec_process(
            deadline(QUICK_CALL),
            &pb::ExecProcessRequest {
                container: container.to_string(),
                argv: argv.to_vec(),
                stdin: true,
                tty: true,
                rows: rows.into(),
                cols: cols.into(),
                ..Default::default()
            },
        )?;
        Ok(reply.exec_id)
    }

    /// Sets the window size of an exec's terminal (the process gets
    /// SIGWINCH). Since protocol 2.1.
    pub fn resize_terminal(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        self.agent.tty_win_resize(
            deadline(QUICK_CALL),
            &pb::TtyWinResizeRequest {
                exec_id: exec_id.to_string(),
                rows: rows.into(),
                cols: cols.into(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Writes bytes to the process's stdin; returns how many were taken.
    pub fn write_stdin(&self, exec_id: &str, data: &[u8]) -> Result<usize> {
        let reply = self.agent.write_stdin(
            deadline(POLL_CALL),
            &pb::WriteStreamRequest {
                exec_id: exec_id.to_string(),
                data: data.to_vec(),
                ..Default::default()
            },
        )?;
        Ok(reply.len as usize)
    }

    /// Closes the process's stdin (it reads EOF).
    pub fn close_stdin(&self, exec_id: &str) -> Result<()> {
        self.agent.close_stdin(
            deadline(QUICK_CALL),
            &pb::CloseStdinRequest {
                exec_id: exec_id.to_string(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// The next bytes of an output stream: `Some(empty)` when nothing came
    /// within the agent's hold, `None` at end of stream.
    pub fn read_output(&self, exec_id: &str, stream: OutputStream) -> Result<Option<Vec<u8>>> {
        let req = pb::ReadStreamRequest {
            exec_id: exec_id.to_string(),
            len: crate::limits::MAX_READ_CHUNK,
            ..Default::default()
        };
        let reply = match stream {
            OutputStream::Stdout => self.agent.read_stdout(deadline(POLL_CALL), &req)?,
            OutputStream::Stderr => self.agent.read_stderr(deadline(POLL_CALL), &req)?,
        };
        Ok((!(reply.eof && reply.data.is_empty())).then_some(reply.data))
    }

    /// Sends a signal to the exec'd process (since protocol 2.2, or to the
    /// init process of a container made by [`AgentConn::create_container`],
    /// by its id).
    pub fn signal(&self, exec_id: &str, signal: u32) -> Result<()> {
        self.agent.signal_process(
            deadline(QUICK_CALL),
            &pb::SignalProcessRequest {
                exec_id: exec_id.to_string(),
                signal,
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Waits for the exec'd process to exit (since protocol 2.2, or for the
    /// init process of a container made by [`AgentConn::create_container`],
    /// by its id); its exit code (128+N for signal N). Polls in
    /// [`LONG_POLL_MAX`] steps, so it waits as long as the process runs.
    pub fn wait(&self, exec_id: &str) -> Result<i32> {
        let req = pb::WaitProcessRequest {
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        loop {
            match self.agent.wait_process(deadline(POLL_CALL), &req) {
                Ok(reply) => return Ok(reply.exit_code),
                Err(ttrpc::Error::RpcStatus(s)) if s.code() == ttrpc::Code::DEADLINE_EXCEEDED => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads a container's log (its latest run's) from `offset`
    /// (`tail_lines` on the first call); with `follow`, waits for more
    /// until that run ended.
    pub fn read_log(
        &self,
        container: &str,
        offset: u64,
        tail_lines: Option<u64>,
        follow: bool,
    ) -> Result<LogChunk> {
        self.log_chunk(pb::ReadLogRequest {
            container: container.to_string(),
            offset,
            tail_lines,
            follow,
            ..Default::default()
        })
    }

    /// [`AgentConn::read_log`] of the run before the latest
    /// (`kubectl logs --previous`); `NOT_FOUND` if there is none.
    pub fn read_previous_log(
        &self,
        container: &str,
        offset: u64,
        tail_lines: Option<u64>,
    ) -> Result<LogChunk> {
        self.log_chunk(pb::ReadLogRequest {
            container: container.to_string(),
            offset,
            tail_lines,
            previous: true,
            ..Default::default()
        })
    }

    /// One `ReadLog` call (the chunk size filled in).
    fn log_chunk(&self, mut req: pb::ReadLogRequest) -> Result<LogChunk> {
        req.len = crate::limits::MAX_READ_CHUNK;
        let reply = self.agent.read_log(deadline(POLL_CALL), &req)?;
        Ok(LogChunk {
            data: reply.data,
            next_offset: reply.next_offset,
            end: reply.end,
        })
    }

    /// The event watch: events after `after_seq` and the status, as soon
    /// as either moved past what the caller has (or empty after a while).
    pub fn events(&self, after_seq: u64, status_generation: u64) -> Result<EventBatch> {
        let reply = self.agent.get_events(
            deadline(POLL_CALL),
            &pb::GetEventsRequest {
                after_seq,
                status_generation,
                ..Default::default()
            },
        )?;
        let events = reply
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| event_from_pb(e, &format!("events[{i}]")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let status =
            sandbox_status_from_pb(reply.status.into_option().unwrap_or_default(), "status")?;
        Ok(EventBatch {
            events,
            status,
            status_generation: reply.status_generation,
        })
    }

    /// Creates a container from an OCI spec in the sandbox (not started).
    /// Since protocol 2.2.
    pub fn create_container(&self, request: &CreateContainer) -> Result<()> {
        self.agent.create_container(
            deadline(QUICK_CALL),
            &pb::CreateContainerRequest::from(request),
        )?;
        Ok(())
    }

    /// Starts a created container's process. Since protocol 2.2.
    pub fn start_container(&self, container_id: &str) -> Result<()> {
        self.agent.start_container(
            deadline(QUICK_CALL),
            &pb::StartContainerRequest {
                container_id: container_id.to_string(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Forgets a container that does not run. Since protocol 2.2.
    pub fn remove_container(&self, container_id: &str) -> Result<()> {
        self.agent.remove_container(
            deadline(QUICK_CALL),
            &pb::RemoveContainerRequest {
                container_id: container_id.to_string(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// A container's usage, as far as its cgroup tells. Since protocol 2.2.
    pub fn container_stats(&self, container_id: &str) -> Result<ContainerStats> {
        let reply = self.agent.stats_container(
            deadline(QUICK_CALL),
            &pb::StatsContainerRequest {
                container_id: container_id.to_string(),
                ..Default::default()
            },
        )?;
        Ok(reply.into())
    }

    /// Sets a container's limits from the OCI spec's `linux.resources`
    /// (`resources` is its JSON). Since protocol 2.2.
    pub fn update_container(&self, container_id: &str, resources: &[u8]) -> Result<()> {
        self.agent.update_container(
            deadline(QUICK_CALL),
            &pb::UpdateContainerRequest {
                container_id: container_id.to_string(),
                resources: resources.to_vec(),
                ..Default::default()
            },
        )?;
        Ok(())
    }

    /// Starts `argv` in a container made by [`AgentConn::create_container`];
    /// returns the exec id. Since protocol 2.2.
    pub fn exec_in_container(
        &self,
        container_id: &str,
        argv: &[String],
        stdin: bool,
    ) -> Result<String> {
        let reply = self.agent.exec_process(
            deadline(QUICK_CALL),
            &pb::ExecProcessRequest {
                container_id: container_id.to_string(),
                argv: argv.to_vec(),
                stdin,
                ..Default::default()
            },
        )?;
        Ok(reply.exec_id)
    }

    /// Reads the agent-kept log of a container made by
    /// [`AgentConn::create_container`], like [`AgentConn::read_log`].
    /// Since protocol 2.2.
    pub fn read_container_log(
        &self,
        container_id: &str,
        offset: u64,
        follow: bool,
    ) -> Result<LogChunk> {
        self.log_chunk(pb::ReadLogRequest {
            container_id: container_id.to_string(),
            offset,
            follow,
            ..Default::default()
        })
    }
}
