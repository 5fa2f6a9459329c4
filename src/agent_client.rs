//! The host's dial to the in-guest agent, over hybrid vsock: connect to the
//! VM's Unix socket, send `CONNECT <port>\n`, expect `OK <n>\n`; the stream
//! is then the agent API (ttrpc), and the first call on it is the version
//! exchange. The same code talks to vhost-device-vsock and to the builtin
//! VMM's vsock device.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use podvm_proto::{AgentConn, AgentVersion, ClientError, AGENT_VSOCK_PORT, PROTOCOL_MAJOR};

/// The oldest agent protocol minor version pods are handed to: 2.3 added
/// the pod lifecycle (init containers, probes, hooks, volumes) and the
/// agent-decided phase the host reports.
pub const MIN_AGENT_MINOR: u32 = 3;

/// Longest handshake reply accepted (`OK 4294967295\n` fits easily).
const MAX_HANDSHAKE_REPLY: usize = 32;
/// How long one `CONNECT` line may take to be written or answered.
const HANDSHAKE_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Who we are, for the agent's log (the version exchange's `client`).
pub const CLIENT_NAME: &str = concat!("podvm ", env!("CARGO_PKG_VERSION"));

/// Where one VM's agent is reached.
#[derive(Debug, Clone)]
pub struct AgentClient {
    uds: PathBuf,
    port: u32,
}

/// Why one dial attempt failed: worth retrying, or not.
enum Attempt {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

impl AgentClient {
    pub fn new(uds: &Path) -> Self {
        AgentClient {
            uds: uds.to_path_buf(),
            port: AGENT_VSOCK_PORT,
        }
    }

    /// Connects and does the version exchange, retrying the dial until
    /// `deadline` while the guest is not listening yet. `alive` is asked
    /// between attempts so a dead VM fails fast. An agent of another major
    /// protocol version is refused, the error naming both versions; so is
    /// one older than [`MIN_AGENT_MINOR`] (its pods would silently lack
    /// what came later: init containers, probes, hooks, volumes, phase).
    pub fn connect(
        &self,
        deadline: Instant,
        alive: &dyn Fn() -> bool,
    ) -> Result<(AgentConn, AgentVersion)> {
        let stream = self.dial(deadline, alive)?;
        let (conn, version) = AgentConn::handshake(stream, CLIENT_NAME).map_err(|e| match e {
            ClientError::Incompatible(why) => {
                anyhow!("refusing the agent at {}: {why}", self.uds.display())
            }
            other => {
                anyhow::Error::new(other).context("the version exchange with the agent failed")
            }
        })?;
        if version.protocol_minor < MIN_AGENT_MINOR {
            bail!(
                "refusing the agent at {}: it speaks protocol {}.{}, podvm needs {PROTOCOL_MAJOR}.{MIN_AGENT_MINOR} or later for pods (a stale guest image? rebuild it with guest-image/build.sh)",
                self.uds.display(),
                version.protocol_major,
                version.protocol_minor
            );
        }
        Ok((conn, version))
    }

    /// The hybrid-vsock dial alone: a stream that reaches the agent's port.
    pub fn dial(&self, deadline: Instant, alive: &dyn Fn() -> bool) -> Result<UnixStream> {
        let mut pause = Duration::from_millis(20);
        loop {
            let last = match self.try_dial() {
                Ok(s) => return Ok(s),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) => e,
            };
            if !alive() {
                return Err(last.context("the VM is not running"));
            }
            if Instant::now() + pause > deadline {
                return Err(last.context("the agent did not answer in time"));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    fn try_dial(&self) -> std::result::Result<UnixStream, Attempt> {
        let mut s = UnixStream::connect(&self.uds)
            .with_context(|| format!("cannot connect to {}", self.uds.display()))
            .map_err(Attempt::Retry)?;
        s.set_read_timeout(Some(HANDSHAKE_IO_TIMEOUT))
            .and_then(|_| s.set_write_timeout(Some(HANDSHAKE_IO_TIMEOUT)))
            .map_err(|e| Attempt::Fatal(e.into()))?;
        s.write_all(format!("CONNECT {}\n", self.port).as_bytes())
            .context("handshake write failed")
            .map_err(Attempt::Retry)?;
        let mut reply = Vec::with_capacity(MAX_HANDSHAKE_REPLY);
        let mut byte = [0u8; 1];
        loop {
            match s.read(&mut byte) {
                Ok(0) => {
                    return Err(Attempt::Retry(anyhow!(
                        "nothing listens on vsock port {} yet",
                        self.port
                    )))
                }
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if reply.len() < MAX_HANDSHAKE_REPLY => reply.push(byte[0]),
                Ok(_) => return Err(Attempt::Fatal(anyhow!("overlong vsock handshake reply"))),
                Err(e) => return Err(Attempt::Retry(anyhow!("handshake read failed: {e}"))),
            }
        }
        let text = String::from_utf8_lossy(&reply);
        if !text.starts_with("OK ") {
            return Err(Attempt::Fatal(anyhow!(
                "unexpected vsock handshake reply {text:?}"
            )));
        }
        // From here on ttrpc owns the socket and every call has its own
        // deadline; socket timeouts would only break its long polls.
        s.set_read_timeout(None)
            .and_then(|_| s.set_write_timeout(None))
            .map_err(|e| Attempt::Fatal(e.into()))?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests;
