//! `ReadLog`: a container's CRI log from an offset (see `log_read`): a
//! pod container's by name (its latest run's, or with `previous` the one
//! before), or (since 2.2) a container of the container-level API by id.

use std::time::Duration;

use podvm_proto::pb::agent as pb;

use super::status::status;
use crate::agent::Agent;
use crate::log_read::{read_log, LogRequest, RunLog};

pub fn read(
    agent: &Agent,
    req: pb::ReadLogRequest,
    hold: Duration,
) -> ttrpc::Result<pb::ReadLogResponse> {
    let request = LogRequest {
        offset: req.offset,
        tail_lines: req.tail_lines,
        follow: req.follow,
        len: req.len,
    };
    let chunk = if req.container_id.is_empty() {
        let container = agent.container(&req.container).map_err(status)?;
        let current = container.current_run();
        let run = if req.previous {
            current.checked_sub(1).ok_or_else(|| {
                ttrpc::Error::RpcStatus(ttrpc::get_status(
                    ttrpc::Code::NOT_FOUND,
                    format!(
                        "previous terminated container {:?} not found",
                        req.container
                    ),
                ))
            })?
        } else {
            current
        };
        read_log(
            &RunLog {
                container: &container,
                run,
            },
            &request,
            hold,
        )
    } else {
        let container = agent.cri().get(&req.container_id).map_err(status)?;
        read_log(&*container, &request, hold)
    }
    .map_err(status)?;
    Ok(pb::ReadLogResponse {
        data: chunk.data,
        next_offset: chunk.next_offset,
        end: chunk.end,
        ..Default::default()
    })
}
