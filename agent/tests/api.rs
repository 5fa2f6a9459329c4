//! The API as a contract: an old client (the first published copy of the
//! API) against this agent, fields the agent does not know, the version
//! exchange, conversion errors naming the field, and the event watch.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{container, pod, TestAgent};
use podvm_proto::client::QUICK_CALL;
use podvm_proto::pb::agent as pb;
use podvm_proto::pb_v2_0::{agent as old, agent_ttrpc as old_ttrpc};
use podvm_proto::{ContainerState, EventType, RestartPolicy, PROTOCOL_MAJOR, PROTOCOL_MINOR};
use protobuf::{Message, MessageField};
use ttrpc::context::with_duration;
use ttrpc::Code;

fn raw_client(agent: &TestAgent) -> ttrpc::Client {
    let stream = UnixStream::connect(&agent.socket).unwrap();
    ttrpc::Client::new(stream.into_raw_fd()).unwrap()
}

#[test]
fn a_client_of_the_first_published_api_works() {
    require_env!();
    let agent = TestAgent::start();
    let client = raw_client(&agent);
    let health = old_ttrpc::HealthClient::new(client.clone());
    let version = health
        .version(
            with_duration(QUICK_CALL),
            &old::VersionRequest {
                protocol_major: 2,
                protocol_minor: 0,
                client: "podvm 2.0 (test)".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (version.protocol_major, version.protocol_minor),
        (PROTOCOL_MAJOR, PROTOCOL_MINOR)
    );

    let rpc = old_ttrpc::AgentClient::new(client);
    let spec = old::SandboxSpec {
        name: "oldpod".into(),
        namespace: "default".into(),
        uid: "1111-2222".into(),
        hostname: "oldpod".into(),
        restart_policy: old::RestartPolicy::RESTART_POLICY_NEVER.into(),
        termination_grace_period_seconds: 2,
        containers: vec![old::ContainerSpec {
            name: "app".into(),
            image: "busybox:test".into(),
            image_id: format!("sha256:{}", "0".repeat(64)),
            image_config: MessageField::some(old::ImageConfig {
                env: vec!["PATH=/bin".into()],
                ..Default::default()
            }),
            rootfs: MessageField::some(old::Rootfs {
                source: Some(old::rootfs::Source::Directory(
                    agent.rootfs.to_string_lossy().into_owned(),
                )),
                ..Default::default()
            }),
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo hello from 2.0; exec sleep 1000".into(),
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    rpc.create_sandbox(
        with_duration(common::LIFECYCLE_CALL),
        &old::CreateSandboxRequest {
            sandbox: MessageField::some(spec),
            ..Default::default()
        },
    )
    .unwrap();
    agent.wait_running("app");

    // Exec: start, read stdout to its end, wait.
    let exec = rpc
        .exec_process(
            with_duration(QUICK_CALL),
            &old::ExecProcessRequest {
                container: "app".into(),
                argv: vec!["echo".into(), "exec from 2.0".into()],
                stdin: false,
                ..Default::default()
            },
        )
        .unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = rpc
            .read_stdout(
                with_duration(podvm_proto::client::POLL_CALL),
                &old::ReadStreamRequest {
                    exec_id: exec.exec_id.clone(),
                    len: 4096,
                    ..Default::default()
                },
            )
            .unwrap();
        out.extend_from_slice(&chunk.data);
        if chunk.eof {
            break;
        }
    }
    assert_eq!(out, b"exec from 2.0\n");
    let exit = rpc
        .wait_process(
            with_duration(podvm_proto::client::POLL_CALL),
            &old::WaitProcessRequest {
                exec_id: exec.exec_id,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(exit.exit_code, 0);

    // Logs: follow until the line is there (the container keeps running).
    let mut log = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !String::from_utf8_lossy(&log).contains("hello from 2.0") {
        assert!(Instant::now() < deadline, "log: {log:?}");
        let chunk = rpc
            .read_log(
                with_duration(podvm_proto::client::POLL_CALL),
                &old::ReadLogRequest {
                    container: "app".into(),
                    offset,
                    follow: true,
                    len: 65536,
                    ..Default::default()
                },
            )
            .unwrap();
        log.extend_from_slice(&chunk.data);
        offset = chunk.next_offset;
        assert!(!chunk.end);
    }
    let status = rpc
        .get_sandbox_status(
            with_duration(QUICK_CALL),
            &old::GetSandboxStatusRequest::default(),
        )
        .unwrap();
    assert!(status.sandbox_ready);
    assert_eq!(status.containers[0].name, "app");
}

/// Appends field 900 (varint 1) and field 901 (bytes "?"): fields no
/// version of the API has.
fn with_unknown_fields(mut encoded: Vec<u8>) -> Vec<u8> {
    // Tag = field number << 3 | wire type, as a varint.
    encoded.extend_from_slice(&[0xa0, 0x38, 0x01]); // 900 << 3 | 0, then 1
    encoded.extend_from_slice(&[0xaa, 0x38, 0x01, b'?']); // 901 << 3 | 2, len 1
    encoded
}

#[test]
fn fields_the_agent_does_not_know_are_ignored() {
    require_env!();
    let agent = TestAgent::start();
    let client = raw_client(&agent);
    let call = |method: &str, payload: Vec<u8>| {
        let mut req = ttrpc::Request::new();
        req.service = "podvm.agent.v2.Agent".into();
        req.method = method.into();
        req.payload = payload;
        req.timeout_nano = common::LIFECYCLE_CALL.as_nanos() as i64;
        client.request(req)
    };
    // A whole spec with unknown fields at the top and inside a container.
    let spec = pod(vec![container(
        "app",
        &agent.rootfs,
        &["sh", "-c", "echo unknown fields ok; exec sleep 1000"],
    )]);
    let mut spec = pb::SandboxSpec::from(&spec);
    let container = with_unknown_fields(spec.containers[0].write_to_bytes().unwrap());
    spec.containers[0] = pb::ContainerSpec::parse_from_bytes(&container).unwrap();
    let request = pb::CreateSandboxRequest {
        sandbox: MessageField::some(spec),
        ..Default::default()
    };
    let answer = call(
        "CreateSandbox",
        with_unknown_fields(request.write_to_bytes().unwrap()),
    )
    .unwrap();
    assert_eq!(answer.status.code.enum_value_or(Code::UNKNOWN), Code::OK);
    agent.wait_log("app", "unknown fields ok");

    let answer = call(
        "GetSandboxStatus",
        with_unknown_fields(
            pb::GetSandboxStatusRequest::default()
                .write_to_bytes()
                .unwrap(),
        ),
    )
    .unwrap();
    let status = pb::SandboxStatus::parse_from_bytes(&answer.payload).unwrap();
    assert_eq!(status.containers.len(), 1);
}

#[test]
fn the_version_exchange_refuses_another_major_naming_both() {
    require_env!();
    let agent = TestAgent::start();
    let health = podvm_proto::pb::agent_ttrpc::HealthClient::new(raw_client(&agent));
    let refused = health.version(
        with_duration(QUICK_CALL),
        &pb::VersionRequest {
            protocol_major: PROTOCOL_MAJOR + 1,
            protocol_minor: 4,
            client: "from the future".into(),
            ..Default::default()
        },
    );
    match refused {
        Err(ttrpc::Error::RpcStatus(s)) => {
            assert_eq!(s.code(), Code::FAILED_PRECONDITION);
            assert!(
                s.message().contains(&format!("{}.4", PROTOCOL_MAJOR + 1)),
                "{s:?}"
            );
            assert!(
                s.message()
                    .contains(&format!("{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}")),
                "{s:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let answer = health
        .check(with_duration(QUICK_CALL), &pb::CheckRequest::default())
        .unwrap();
    assert_eq!(
        answer.status.enum_value(),
        Ok(pb::check_response::ServingStatus::SERVING)
    );
}

#[test]
fn specs_that_do_not_convert_are_refused_naming_the_field() {
    require_env!();
    let agent = TestAgent::start();
    let rpc = podvm_proto::pb::agent_ttrpc::AgentClient::new(raw_client(&agent));
    let create = |spec: Option<pb::SandboxSpec>| {
        rpc.create_sandbox(
            with_duration(common::LIFECYCLE_CALL),
            &pb::CreateSandboxRequest {
                sandbox: spec.into(),
                ..Default::default()
            },
        )
    };
    let message_of = |r: ttrpc::Result<pb::Empty>| match r {
        Err(ttrpc::Error::RpcStatus(s)) => {
            assert_eq!(s.code(), Code::INVALID_ARGUMENT, "{s:?}");
            s.message().to_string()
        }
        other => panic!("{other:?}"),
    };
    assert!(message_of(create(None)).contains("sandbox"));
    let good = pb::SandboxSpec::from(&pod(vec![
        container("a", &agent.rootfs, &["true"]),
        container("b", &agent.rootfs, &["true"]),
    ]));
    let mut no_rootfs = good.clone();
    no_rootfs.containers[1].rootfs = MessageField::none();
    let why = message_of(create(Some(no_rootfs)));
    assert!(why.contains("sandbox.containers[1].rootfs"), "{why}");
    let mut no_policy = good.clone();
    no_policy.restart_policy = protobuf::EnumOrUnknown::from_i32(77);
    let why = message_of(create(Some(no_policy)));
    assert!(why.contains("sandbox.restartPolicy"), "{why}");
    // Nothing was created: the good one still is.
    create(Some(good)).unwrap();
    assert_eq!(agent.status().containers.len(), 2);
}

#[test]
fn the_event_watch_reports_a_crash_loop() {
    require_env!();
    let agent = TestAgent::start();
    let mut spec = pod(vec![container(
        "fails",
        &agent.rootfs,
        &["sh", "-c", "exit 1"],
    )]);
    spec.restart_policy = RestartPolicy::OnFailure;
    agent.create(spec);
    let conn = agent.conn();
    let (mut after, mut generation) = (0, 0);
    // The latest copy of each event (a repeat comes again with a new seq
    // and replaces the one held, as the host does).
    let mut latest: Vec<podvm_proto::Event> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (backoff, status) = loop {
        assert!(Instant::now() < deadline, "no BackOff; events: {latest:?}");
        let batch = conn.events(after, generation).unwrap();
        let mut backoff = None;
        for e in batch.events {
            assert!(e.seq > after, "seq {} after {after}", e.seq);
            after = e.seq;
            assert_eq!(e.container.as_deref(), Some("fails"));
            latest.retain(|held| held.reason != e.reason || held.message != e.message);
            if e.reason == "BackOff" {
                backoff = Some(e.clone());
            }
            latest.push(e);
        }
        generation = batch.status_generation;
        if let Some(e) = backoff {
            break (e, batch.status);
        }
    };
    // Two runs (the first restart is immediate), then the back-off: the
    // second run's events come in kubelet's order, folded onto the first's.
    let reasons: Vec<&str> = latest.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["Pulled", "Created", "Started", "BackOff"],
        "{latest:?}"
    );
    assert!(latest[..3].iter().all(|e| e.count == 2), "{latest:?}");
    assert_eq!(backoff.event_type, EventType::Warning);
    assert!(
        backoff
            .message
            .starts_with("Back-off restarting failed container"),
        "{}",
        backoff.message
    );
    // The status that came with it is at least as new as the event.
    let fails = &status.containers[0];
    assert!(fails.restart_count >= 1, "{fails:?}");
    assert!(
        matches!(&fails.state, ContainerState::Waiting { reason, .. } if reason == "CrashLoopBackOff"),
        "{fails:?}"
    );
}
