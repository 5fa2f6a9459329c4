//! The host's client for the in-guest agent, over hybrid vsock: connect to
//! the VM's Unix socket, send `CONNECT <port>\n`, expect `OK <n>\n`, then
//! speak the framed protocol. The same code talks to vhost-device-vsock and
//! to the builtin VMM's vsock device.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use podvm_proto::{read_message, write_message, Request, Response, AGENT_VSOCK_PORT};

/// Longest handshake reply accepted (`OK 4294967295\n` fits easily).
const MAX_HANDSHAKE_REPLY: usize = 32;

/// Talks to one VM's agent.
#[derive(Debug, Clone)]
pub struct AgentClient {
    uds: PathBuf,
    port: u32,
}

/// Why one connection attempt failed: worth retrying, or not.
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

    /// Connects, retrying until `deadline` while the guest is not listening
    /// yet. `alive` is asked between attempts so a dead VM fails fast.
    pub fn connect(&self, deadline: Instant, alive: &dyn Fn() -> bool) -> Result<UnixStream> {
        let mut pause = Duration::from_millis(20);
        loop {
            let last = match self.try_connect() {
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

    fn try_connect(&self) -> std::result::Result<UnixStream, Attempt> {
        let mut s = UnixStream::connect(&self.uds)
            .with_context(|| format!("cannot connect to {}", self.uds.display()))
            .map_err(Attempt::Retry)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .and_then(|_| s.set_write_timeout(Some(Duration::from_secs(10))))
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
        s.set_read_timeout(None)
            .map_err(|e| Attempt::Fatal(e.into()))?;
        Ok(s)
    }

    /// Sends one request and returns its single reply; an `Error` reply
    /// becomes an error.
    pub fn call(&self, req: &Request, timeout: Duration) -> Result<Response> {
        let deadline = Instant::now() + timeout;
        let mut s = self.connect(deadline, &|| true)?;
        s.set_read_timeout(Some(timeout)).context("socket setup")?;
        write_message(&mut s, req).context("cannot send request to the agent")?;
        match read_message::<Response, _>(&mut s).context("no valid reply from the agent")? {
            None => bail!("the agent closed the connection without replying"),
            Some(Response::Error { code, message }) => bail!("agent: {message} ({code:?})"),
            Some(r) => Ok(r),
        }
    }

    /// Sends one request and returns the connection to read a stream of
    /// replies from.
    pub fn open_stream(&self, req: &Request, connect_timeout: Duration) -> Result<ReplyStream> {
        let mut s = self.connect(Instant::now() + connect_timeout, &|| true)?;
        write_message(&mut s, req).context("cannot send request to the agent")?;
        Ok(ReplyStream { socket: s })
    }
}

/// Replies to one streaming request.
pub struct ReplyStream {
    socket: UnixStream,
}

impl ReplyStream {
    /// The next reply; `None` when the agent closed the stream. An `Error`
    /// reply becomes an error.
    pub fn next_reply(&mut self) -> Result<Option<Response>> {
        match read_message::<Response, _>(&mut self.socket).context("bad reply from the agent")? {
            Some(Response::Error { code, message }) => bail!("agent: {message} ({code:?})"),
            other => Ok(other),
        }
    }
}
