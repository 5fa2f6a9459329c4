//! `ReadLog`: a container's CRI log from an offset (see `log_read`).

use std::time::Duration;

use podvm_proto::pb::agent as pb;

use super::status::status;
use crate::agent::Agent;
use crate::log_read::{read_log, LogRequest};

pub fn read(
    agent: &Agent,
    req: pb::ReadLogRequest,
    hold: Duration,
) -> ttrpc::Result<pb::ReadLogResponse> {
    let container = agent.container(&req.container).map_err(status)?;
    let chunk = read_log(
        &container,
        &LogRequest {
            offset: req.offset,
            tail_lines: req.tail_lines,
            follow: req.follow,
            len: req.len,
        },
        hold,
    )
    .map_err(status)?;
    Ok(pb::ReadLogResponse {
        data: chunk.data,
        next_offset: chunk.next_offset,
        end: chunk.end,
        ..Default::default()
    })
}
