//! Errors of the agent's operations as ttrpc status codes: the only place
//! where they meet the protocol.

use std::fmt::Display;

use ttrpc::Code;

use crate::agent::AgentError;
use crate::cgroup::resources::ResourceError;
use crate::cri::CriError;
use crate::exec::ExecError;
use crate::log_read::LogReadError;
use crate::rootfs::RootfsError;

/// A ttrpc error answer.
pub fn rpc_error(code: Code, message: impl Display) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message.to_string()))
}

/// The status code an error is answered with.
pub trait StatusCode: Display {
    fn code(&self) -> Code;
}

impl StatusCode for AgentError {
    fn code(&self) -> Code {
        match self {
            AgentError::AlreadyCreated => Code::FAILED_PRECONDITION,
            AgentError::Invalid(_) => Code::INVALID_ARGUMENT,
            AgentError::Setup(_) => Code::INTERNAL,
            AgentError::NoContainer(_) => Code::NOT_FOUND,
        }
    }
}

impl StatusCode for ExecError {
    fn code(&self) -> Code {
        match self {
            ExecError::NoCommand
            | ExecError::BadSignal(_)
            | ExecError::ChunkTooLarge(_)
            | ExecError::BadSize { .. } => Code::INVALID_ARGUMENT,
            ExecError::NotRunning(_)
            | ExecError::StdinClosed
            | ExecError::StdinGone
            | ExecError::NoTerminal => Code::FAILED_PRECONDITION,
            ExecError::UnknownExec(_) => Code::NOT_FOUND,
            ExecError::TooMany => Code::RESOURCE_EXHAUSTED,
            ExecError::StillRunning => Code::DEADLINE_EXCEEDED,
            ExecError::Spawn(_)
            | ExecError::Write(_)
            | ExecError::Signal(_)
            | ExecError::Terminal(_) => Code::INTERNAL,
        }
    }
}

impl StatusCode for CriError {
    fn code(&self) -> Code {
        match self {
            CriError::BadId(_)
            | CriError::Spec(_)
            | CriError::Log { .. }
            | CriError::BadSignal(_) => Code::INVALID_ARGUMENT,
            CriError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            CriError::NotFound(_) => Code::NOT_FOUND,
            CriError::TooMany => Code::RESOURCE_EXHAUSTED,
            CriError::NoSandbox | CriError::SandboxStopped | CriError::WrongPhase { .. } => {
                Code::FAILED_PRECONDITION
            }
            CriError::Resources(e) => match e {
                ResourceError::Invalid { .. } => Code::INVALID_ARGUMENT,
                ResourceError::MissingController(_) => Code::FAILED_PRECONDITION,
                ResourceError::Write { .. } => Code::INTERNAL,
            },
            CriError::Rootfs(e) => match e {
                RootfsError::BadDirectory(_) | RootfsError::BadSource(..) => Code::INVALID_ARGUMENT,
                RootfsError::NoDevice(_) => Code::NOT_FOUND,
                RootfsError::Mount { .. } | RootfsError::Io { .. } => Code::INTERNAL,
            },
            // The container's process could not be started as its spec
            // says (runc's failures are containerd's UNKNOWN).
            CriError::Start { .. } => Code::UNKNOWN,
            CriError::Internal(_) => Code::INTERNAL,
        }
    }
}

impl StatusCode for LogReadError {
    fn code(&self) -> Code {
        match self {
            LogReadError::PastEnd { .. } | LogReadError::NotLineStart(_) => Code::INVALID_ARGUMENT,
            LogReadError::Io(_) => Code::INTERNAL,
        }
    }
}

/// Answers `e` with its status code and message.
pub fn status<E: StatusCode>(e: E) -> ttrpc::Error {
    rpc_error(e.code(), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: ttrpc::Error) -> (Code, String) {
        match e {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message().to_string()),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn codes_and_messages() {
        assert_eq!(
            code_of(status(AgentError::NoContainer("web".into()))),
            (Code::NOT_FOUND, "no container named \"web\"".into())
        );
        assert_eq!(
            code_of(status(ExecError::StillRunning)).0,
            Code::DEADLINE_EXCEEDED
        );
        assert_eq!(
            code_of(status(ExecError::UnknownExec("x".into()))).0,
            Code::NOT_FOUND
        );
        assert_eq!(
            code_of(status(ExecError::TooMany)).0,
            Code::RESOURCE_EXHAUSTED
        );
        assert_eq!(
            code_of(status(LogReadError::NotLineStart(3))).0,
            Code::INVALID_ARGUMENT
        );
        assert_eq!(
            code_of(status(AgentError::AlreadyCreated)).0,
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            code_of(status(CriError::Resources(
                ResourceError::MissingController("memory")
            ))),
            (
                Code::FAILED_PRECONDITION,
                "resources: the memory cgroup controller is not available to the container".into()
            )
        );
        assert_eq!(
            code_of(status(CriError::AlreadyExists("c".into()))).0,
            Code::ALREADY_EXISTS
        );
    }
}
