//! Fuzzes the agent API's decoders as a hostile peer would drive them: the
//! input is a byte stream cut into ttrpc frames (10-byte header, length
//! checked against ttrpc's 4 MiB limit before anything is allocated), each
//! frame's payload decoded as a ttrpc request envelope (then its payload as
//! the message of the method it names, and the sandbox spec checked by the
//! typed conversion the agent applies) and as a ttrpc response envelope
//! (then as the answers the host decodes: status, events, stream chunks).
//! Each payload is also decoded as a bare container spec and put into a
//! sandbox, so the protocol 2.3 parts (probes, hooks, sidecars, volume
//! mounts, termination message settings) are one nesting level from the
//! input. Nothing may panic, loop, or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use podvm_proto::convert::{
    create_container_from_pb, event_from_pb, sandbox_from_pb, sandbox_status_from_pb,
};
use podvm_proto::pb::agent as pb;
use protobuf::Message;
use ttrpc::proto::{Codec, MESSAGE_HEADER_LENGTH, MESSAGE_LENGTH_MAX};
use ttrpc::MessageHeader;

/// Decodes a request payload as the message of `method`, as the agent does.
fn request(method: &str, payload: &[u8]) {
    match method {
        "CreateSandbox" => {
            if let Ok(req) = pb::CreateSandboxRequest::parse_from_bytes(payload) {
                if let Some(spec) = req.sandbox.into_option() {
                    let _ = sandbox_from_pb(spec, "sandbox");
                }
            }
        }
        "CreateContainer" => {
            if let Ok(req) = pb::CreateContainerRequest::parse_from_bytes(payload) {
                if let Ok(create) = create_container_from_pb(req) {
                    // The OCI runtime spec travels as JSON; the agent
                    // decodes it with oci-spec before its own checks.
                    let _ = serde_json::from_slice::<oci_spec::runtime::Spec>(&create.oci_spec);
                }
            }
        }
        "StartContainer" => drop(pb::StartContainerRequest::parse_from_bytes(payload)),
        "RemoveContainer" => drop(pb::RemoveContainerRequest::parse_from_bytes(payload)),
        "StatsContainer" => drop(pb::StatsContainerRequest::parse_from_bytes(payload)),
        "UpdateContainer" => drop(pb::UpdateContainerRequest::parse_from_bytes(payload)),
        "TtyWinResize" => drop(pb::TtyWinResizeRequest::parse_from_bytes(payload)),
        "ExecProcess" => drop(pb::ExecProcessRequest::parse_from_bytes(payload)),
        "WriteStdin" => drop(pb::WriteStreamRequest::parse_from_bytes(payload)),
        "CloseStdin" => drop(pb::CloseStdinRequest::parse_from_bytes(payload)),
        "ReadStdout" | "ReadStderr" => drop(pb::ReadStreamRequest::parse_from_bytes(payload)),
        "SignalProcess" => drop(pb::SignalProcessRequest::parse_from_bytes(payload)),
        "WaitProcess" => drop(pb::WaitProcessRequest::parse_from_bytes(payload)),
        "ReadLog" => drop(pb::ReadLogRequest::parse_from_bytes(payload)),
        "GetEvents" => drop(pb::GetEventsRequest::parse_from_bytes(payload)),
        "StopSandbox" => drop(pb::StopSandboxRequest::parse_from_bytes(payload)),
        "Version" => drop(pb::VersionRequest::parse_from_bytes(payload)),
        _ => {}
    }
}

/// The names of the volumes [`container_spec`] gives its sandbox.
const VOLUMES: [&str; 3] = ["disk", "dir", "mem"];

/// Decodes a payload as one container spec and checks it as an init
/// container and as a regular one of a sandbox with one volume of each
/// medium, as the agent checks a `CreateSandbox`.
fn container_spec(payload: &[u8]) {
    use pb::volume::Medium;
    let Ok(init) = pb::ContainerSpec::parse_from_bytes(payload) else {
        return;
    };
    let mut main = init.clone();
    main.name.push_str("-main");
    let media = [
        Medium::BlockSerial("podvm-ed0".into()),
        Medium::Directory(pb::Empty::new()),
        Medium::Memory(pb::Empty::new()),
    ];
    let volumes = VOLUMES
        .iter()
        .zip(media)
        .map(|(name, medium)| pb::Volume {
            name: (*name).into(),
            medium: Some(medium),
            ..Default::default()
        })
        .collect();
    let spec = pb::SandboxSpec {
        restart_policy: pb::RestartPolicy::RESTART_POLICY_ALWAYS.into(),
        termination_grace_period_seconds: 30,
        init_containers: vec![init],
        containers: vec![main],
        volumes,
        ..Default::default()
    };
    let _ = sandbox_from_pb(spec, "sandbox");
}

/// Decodes a response payload as the answers the host reads.
fn response(payload: &[u8]) {
    if let Ok(status) = pb::SandboxStatus::parse_from_bytes(payload) {
        let _ = sandbox_status_from_pb(status, "status");
    }
    if let Ok(batch) = pb::GetEventsResponse::parse_from_bytes(payload) {
        for (i, e) in batch.events.into_iter().enumerate() {
            let _ = event_from_pb(e, &format!("events[{i}]"));
        }
        if let Some(status) = batch.status.into_option() {
            let _ = sandbox_status_from_pb(status, "status");
        }
    }
    let _ = pb::ReadStreamResponse::parse_from_bytes(payload);
    let _ = pb::ReadLogResponse::parse_from_bytes(payload);
    let _ = pb::VersionResponse::parse_from_bytes(payload);
    let _ = pb::StatsContainerResponse::parse_from_bytes(payload);
    // An OCI spec, as the agent decodes CreateContainer's JSON.
    let _ = serde_json::from_slice::<oci_spec::runtime::Spec>(payload);
}

fuzz_target!(|data: &[u8]| {
    // The method names are taken from the input too: the first byte picks
    // one, so the fuzzer reaches every decoder with any payload.
    const METHODS: [&str; 18] = [
        "CreateSandbox", "ExecProcess", "WriteStdin", "CloseStdin", "ReadStdout",
        "SignalProcess", "WaitProcess", "ReadLog", "GetEvents", "StopSandbox", "Version",
        "CreateContainer", "StartContainer", "RemoveContainer", "StatsContainer",
        "UpdateContainer", "TtyWinResize", "Nope",
    ];
    let Some((&pick, mut rest)) = data.split_first() else { return };
    request(METHODS[pick as usize % METHODS.len()], rest);
    container_spec(rest);
    // A stream of frames, as the server's reader sees it.
    for _ in 0..16 {
        if rest.len() < MESSAGE_HEADER_LENGTH {
            break;
        }
        let header = MessageHeader::from(&rest[..MESSAGE_HEADER_LENGTH]);
        rest = &rest[MESSAGE_HEADER_LENGTH..];
        let len = header.length as usize;
        if len > MESSAGE_LENGTH_MAX || len > rest.len() {
            break;
        }
        let (payload, tail) = rest.split_at(len);
        rest = tail;
        if let Ok(req) = <ttrpc::Request as Codec>::decode(payload) {
            request(&req.method, &req.payload);
            container_spec(&req.payload);
        }
        if let Ok(res) = <ttrpc::Response as Codec>::decode(payload) {
            response(&res.payload);
        }
        response(payload);
    }
});
