//! Requests (host → agent) and responses (agent → host).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::spec::SandboxSpec;
use crate::status::SandboxStatus;

/// One request; a connection carries exactly one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Health check; answered with [`Response::Health`].
    Check,
    /// Create the pod sandbox and start its containers; answered with
    /// [`Response::Ok`] once every container was started (or failed to).
    CreateSandbox { sandbox: Box<SandboxSpec> },
    /// Current status of the sandbox; answered with [`Response::Status`].
    Status,
    /// A container's log, as [`Response::Log`] frames ended by [`Response::End`].
    Logs {
        container: String,
        /// Keep streaming until the container exits.
        #[serde(default)]
        follow: bool,
        /// Only the last N lines (None: all).
        #[serde(default)]
        tail_lines: Option<u64>,
    },
    /// Run a command in a running container; answered with
    /// [`Response::Output`] frames and one final [`Response::ExecExit`].
    Exec {
        container: String,
        argv: Vec<String>,
        /// Bytes written to the command's stdin, then closed.
        #[serde(default, with = "b64")]
        stdin: Vec<u8>,
    },
    /// Stop every container (TERM, grace period, KILL) and the sandbox.
    StopSandbox { grace_period_seconds: u64 },
    /// Power the VM off (in host mode: exit the agent). Answered with
    /// [`Response::Ok`] before the agent goes down.
    Shutdown,
}

/// Which output stream a chunk of bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdStream {
    Stdout,
    Stderr,
}

/// Error classes the agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or message could not be decoded; the connection is closed.
    BadRequest,
    /// The request names a container or sandbox that does not exist.
    NotFound,
    /// The request is valid but not in the current state (e.g. a second
    /// CreateSandbox, exec in a stopped container).
    FailedPrecondition,
    /// The agent tried and failed.
    Internal,
}

/// One reply frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Ok,
    Health {
        agent_version: String,
        protocol: u16,
    },
    Status {
        status: Box<SandboxStatus>,
    },
    /// Log lines in CRI format (`<RFC3339Nano> <stream> <F|P> <text>\n`).
    Log {
        lines: String,
    },
    /// Bytes of an exec'd process's output.
    Output {
        stream: StdStream,
        #[serde(with = "b64")]
        data: Vec<u8>,
    },
    /// The exec'd process ended with this exit code (128+N for signal N).
    ExecExit {
        exit_code: i32,
    },
    /// The end of a stream of [`Response::Log`] frames.
    End,
    Error {
        code: ErrorCode,
        message: String,
    },
}

impl Response {
    /// Shorthand for an error reply.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error {
            code,
            message: message.into(),
        }
    }
}

/// Bytes as base64 strings, so binary output survives JSON.
mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_output_round_trips() {
        let r = Response::Output {
            stream: StdStream::Stderr,
            data: vec![0, 255, 10, 13],
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), r);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"logs","container":"a","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(
            r#"{"op":"exec","container":"a","argv":[],"stdin":"!!"}"#
        )
        .is_err());
    }
}
