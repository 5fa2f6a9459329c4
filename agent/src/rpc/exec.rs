//! `ExecProcess` and the calls on an exec: stdin, output, signals, exit.
//! Since 2.2 an exec may run in a container of the container-level API
//! (`container_id`), and `SignalProcess` and `WaitProcess` take such a
//! container's id as exec id: its init process.

use std::time::Duration;

use podvm_proto::limits::MAX_READ_CHUNK;
use podvm_proto::pb::agent as pb;

use super::status::{rpc_error, status};
use crate::agent::Agent;
use crate::exec::{ExecError, ExecOptions, WinSize};
use crate::logs::StdStream;

/// A terminal size off the wire: 0 means the default, the rest must fit a
/// terminal's 16 bits.
fn win_size(rows: u32, cols: u32, zero_is_default: bool) -> Result<WinSize, ExecError> {
    let bad = ExecError::BadSize { rows, cols };
    let dimension = |n: u32, default: u16| match n {
        0 if zero_is_default => Ok(default),
        0 => Err(()),
        n => u16::try_from(n).map_err(|_| ()),
    };
    match (
        dimension(rows, WinSize::DEFAULT.rows),
        dimension(cols, WinSize::DEFAULT.cols),
    ) {
        (Ok(rows), Ok(cols)) => Ok(WinSize { rows, cols }),
        _ => Err(bad),
    }
}

pub fn start(agent: &Agent, req: pb::ExecProcessRequest) -> ttrpc::Result<pb::ExecProcessResponse> {
    let terminal = req
        .tty
        .then(|| win_size(req.rows, req.cols, true))
        .transpose()
        .map_err(status)?;
    let options = ExecOptions {
        stdin: req.stdin,
        terminal,
    };
    let exec_id = if req.container_id.is_empty() {
        let container = agent.container(&req.container).map_err(status)?;
        agent.execs().start(&container, req.argv, options)
    } else {
        if !req.container.is_empty() {
            return Err(rpc_error(
                ttrpc::Code::INVALID_ARGUMENT,
                "container and container_id: only one may be given",
            ));
        }
        let container = agent.cri().get(&req.container_id).map_err(status)?;
        agent.execs().start_in(
            &req.container_id,
            container.running_info(),
            req.argv,
            options,
        )
    }
    .map_err(status)?;
    Ok(pb::ExecProcessResponse {
        exec_id,
        ..Default::default()
    })
}

pub fn write_stdin(
    agent: &Agent,
    req: &pb::WriteStreamRequest,
    hold: Duration,
) -> ttrpc::Result<pb::WriteStreamResponse> {
    let len = agent
        .execs()
        .write_stdin(&req.exec_id, &req.data, hold)
        .map_err(status)?;
    Ok(pb::WriteStreamResponse {
        // At most MAX_WRITE_CHUNK, which fits.
        len: u32::try_from(len).unwrap_or(u32::MAX),
        ..Default::default()
    })
}

pub fn resize(agent: &Agent, req: &pb::TtyWinResizeRequest) -> ttrpc::Result<pb::Empty> {
    let size = win_size(req.rows, req.cols, false).map_err(status)?;
    agent.execs().resize(&req.exec_id, size).map_err(status)?;
    Ok(pb::Empty::default())
}

pub fn close_stdin(agent: &Agent, req: &pb::CloseStdinRequest) -> ttrpc::Result<pb::Empty> {
    agent.execs().close_stdin(&req.exec_id).map_err(status)?;
    Ok(pb::Empty::default())
}

/// The most bytes one read answers with, for a request's `len` (0: the
/// agent's most).
fn read_len(len: u32) -> usize {
    let len = if len == 0 { MAX_READ_CHUNK } else { len };
    len.min(MAX_READ_CHUNK) as usize
}

pub fn read(
    agent: &Agent,
    req: &pb::ReadStreamRequest,
    stream: StdStream,
    hold: Duration,
) -> ttrpc::Result<pb::ReadStreamResponse> {
    let chunk = agent
        .execs()
        .read(&req.exec_id, stream, read_len(req.len), hold)
        .map_err(status)?;
    Ok(pb::ReadStreamResponse {
        data: chunk.data,
        eof: chunk.eof,
        ..Default::default()
    })
}

pub fn signal(agent: &Agent, req: &pb::SignalProcessRequest) -> ttrpc::Result<pb::Empty> {
    if agent.cri().contains(&req.exec_id) {
        agent
            .cri()
            .signal(&req.exec_id, req.signal)
            .map_err(status)?;
    } else {
        agent
            .execs()
            .signal(&req.exec_id, req.signal)
            .map_err(status)?;
    }
    Ok(pb::Empty::default())
}

pub fn wait(
    agent: &Agent,
    req: &pb::WaitProcessRequest,
    hold: Duration,
) -> ttrpc::Result<pb::WaitProcessResponse> {
    let exit_code = match agent.cri().get(&req.exec_id) {
        Ok(container) => container
            .wait(hold)
            .ok_or_else(|| status(ExecError::StillRunning))?,
        Err(_) => agent.execs().wait(&req.exec_id, hold).map_err(status)?,
    };
    Ok(pb::WaitProcessResponse {
        exit_code,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_sizes() {
        assert_eq!(win_size(0, 0, true).unwrap(), WinSize::DEFAULT);
        assert_eq!(
            win_size(50, 0, true).unwrap(),
            WinSize { rows: 50, cols: 80 }
        );
        assert!(win_size(0, 10, false).is_err());
        assert!(win_size(70_000, 10, true).is_err());
        assert_eq!(
            win_size(65_535, 1, false).unwrap(),
            WinSize {
                rows: 65_535,
                cols: 1
            }
        );
    }

    #[test]
    fn read_lengths_are_capped() {
        assert_eq!(read_len(0), MAX_READ_CHUNK as usize);
        assert_eq!(read_len(10), 10);
        assert_eq!(read_len(u32::MAX), MAX_READ_CHUNK as usize);
    }
}
