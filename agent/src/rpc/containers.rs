//! The container-level calls (protocol 2.2): `CreateContainer`,
//! `StartContainer`, `RemoveContainer`, `StatsContainer` and
//! `UpdateContainer`.

use podvm_proto::convert::create_container_from_pb;
use podvm_proto::pb::agent as pb;
use podvm_proto::ContainerStats;
use ttrpc::Code;

use super::status::{rpc_error, status};
use crate::agent::Agent;
use crate::cri::parse_resources;

pub fn create(agent: &Agent, req: pb::CreateContainerRequest) -> ttrpc::Result<pb::Empty> {
    let req = create_container_from_pb(req).map_err(|e| rpc_error(Code::INVALID_ARGUMENT, e))?;
    agent.create_container(req).map_err(status)?;
    Ok(pb::Empty::default())
}

pub fn start(agent: &Agent, req: &pb::StartContainerRequest) -> ttrpc::Result<pb::Empty> {
    agent.cri().start(&req.container_id).map_err(status)?;
    Ok(pb::Empty::default())
}

pub fn remove(agent: &Agent, req: &pb::RemoveContainerRequest) -> ttrpc::Result<pb::Empty> {
    agent.cri().remove(&req.container_id).map_err(status)?;
    Ok(pb::Empty::default())
}

pub fn stats(
    agent: &Agent,
    req: &pb::StatsContainerRequest,
) -> ttrpc::Result<pb::StatsContainerResponse> {
    let container = agent.cri().get(&req.container_id).map_err(status)?;
    let s = container.stats();
    Ok(pb::StatsContainerResponse::from(&ContainerStats {
        cpu_usage_ns: s.cpu_usage_ns,
        memory_usage_bytes: s.memory_usage_bytes,
        pids: s.pids,
    }))
}

pub fn update(agent: &Agent, req: &pb::UpdateContainerRequest) -> ttrpc::Result<pb::Empty> {
    let container = agent.cri().get(&req.container_id).map_err(status)?;
    let resources = parse_resources(&req.resources).map_err(status)?;
    container
        .update(&resources)
        .map_err(crate::cri::CriError::from)
        .map_err(status)?;
    Ok(pb::Empty::default())
}
