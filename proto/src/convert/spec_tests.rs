//! Tests of the sandbox spec conversions: the round trip of a fully
//! populated spec, compatibility with a 2.0 peer, and each refusal with the
//! field it names.

use protobuf::{EnumOrUnknown, Message, MessageField};

use super::*;
use crate::convert::fixtures::spec;
use crate::lifecycle::{TerminationMessagePolicy, DEFAULT_TERMINATION_MESSAGE_PATH};

/// The error a spec edited on the wire by `edit` is refused with.
fn refused(edit: impl FnOnce(&mut pb::SandboxSpec)) -> String {
    let mut wire = pb::SandboxSpec::from(&spec());
    edit(&mut wire);
    sandbox_from_pb(wire, "sandbox")
        .expect_err("the edited spec is refused")
        .to_string()
}

fn app(wire: &mut pb::SandboxSpec) -> &mut pb::ContainerSpec {
    &mut wire.containers[0]
}

fn liveness(wire: &mut pb::SandboxSpec) -> &mut pb::Probe {
    app(wire).liveness_probe.mut_or_insert_default()
}

fn readiness_http(wire: &mut pb::SandboxSpec) -> &mut pb::HttpGet {
    match app(wire).readiness_probe.mut_or_insert_default().action {
        Some(pb::probe::Action::HttpGet(ref mut h)) => h,
        ref other => panic!("the fixture's readiness probe is an httpGet, not {other:?}"),
    }
}

#[test]
fn round_trip() {
    let s = spec();
    assert_eq!(
        sandbox_from_pb(pb::SandboxSpec::from(&s), "sandbox").unwrap(),
        s
    );
    // Through the bytes, too.
    let bytes = pb::SandboxSpec::from(&s).write_to_bytes().unwrap();
    let wire = pb::SandboxSpec::parse_from_bytes(&bytes).unwrap();
    assert_eq!(sandbox_from_pb(wire, "sandbox").unwrap(), s);
}

#[test]
fn a_2_0_host_spec_gets_kubernetes_defaults() {
    use crate::pb_v2_0::agent as old;
    let old_spec = old::SandboxSpec {
        name: "demo".into(),
        restart_policy: EnumOrUnknown::new(old::RestartPolicy::RESTART_POLICY_ALWAYS),
        containers: vec![old::ContainerSpec {
            name: "app".into(),
            rootfs: MessageField::some(old::Rootfs {
                source: Some(old::rootfs::Source::Directory("/r".into())),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = old_spec.write_to_bytes().unwrap();
    let s = sandbox_from_pb(
        pb::SandboxSpec::parse_from_bytes(&bytes).unwrap(),
        "sandbox",
    )
    .unwrap();
    let c = &s.containers[0];
    assert_eq!(c.termination_message_path, DEFAULT_TERMINATION_MESSAGE_PATH);
    assert_eq!(c.termination_message_policy, TerminationMessagePolicy::File);
    assert_eq!(c.restart_policy, None);
    assert!(c.liveness_probe.is_none() && c.lifecycle.post_start.is_none());
    assert!(s.init_containers.is_empty() && s.volumes.is_empty());
    assert_eq!(s.active_deadline_seconds, None);
}

#[test]
fn a_2_0_agent_skips_what_2_3_added() {
    use crate::pb_v2_0::agent as old;
    let bytes = pb::SandboxSpec::from(&spec()).write_to_bytes().unwrap();
    let decoded = old::SandboxSpec::parse_from_bytes(&bytes).unwrap();
    assert_eq!(decoded.containers.len(), 1);
    assert_eq!(decoded.containers[0].name, "app");
}

#[test]
fn missing_pieces_are_named() {
    let e = refused(|w| w.containers[0].rootfs = MessageField::none());
    assert_eq!(e, "sandbox.containers[0].rootfs: Required value");
    let e = refused(|w| w.restart_policy = EnumOrUnknown::from_i32(42));
    assert_eq!(e, "sandbox.restartPolicy: Unsupported value: 42");
}

#[test]
fn probe_periods_and_thresholds_must_be_at_least_one() {
    let e = refused(|w| liveness(w).period_seconds = 0);
    assert_eq!(
        e,
        "sandbox.containers[0].livenessProbe.periodSeconds: Invalid value: 0: \
         must be greater than or equal to 1"
    );
    let e = refused(|w| liveness(w).timeout_seconds = 0);
    assert!(e.starts_with("sandbox.containers[0].livenessProbe.timeoutSeconds: Invalid value: 0"));
    let e = refused(|w| liveness(w).failure_threshold = 0);
    assert!(e.starts_with("sandbox.containers[0].livenessProbe.failureThreshold: Invalid"));
    let e = refused(|w| {
        app(w)
            .readiness_probe
            .mut_or_insert_default()
            .success_threshold = 0
    });
    assert!(e.starts_with("sandbox.containers[0].readinessProbe.successThreshold: Invalid"));
    let e = refused(|w| {
        w.init_containers[1]
            .startup_probe
            .mut_or_insert_default()
            .period_seconds = 0
    });
    assert!(e.starts_with("sandbox.initContainers[1].startupProbe.periodSeconds: Invalid"));
}

#[test]
fn liveness_and_startup_need_a_success_threshold_of_one() {
    let e = refused(|w| liveness(w).success_threshold = 2);
    assert_eq!(
        e,
        "sandbox.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
    );
    let e = refused(|w| {
        app(w)
            .startup_probe
            .mut_or_insert_default()
            .success_threshold = 3
    });
    assert!(e.starts_with("sandbox.containers[0].startupProbe.successThreshold"));
}

#[test]
fn probe_grace_periods_are_checked() {
    let e = refused(|w| {
        app(w)
            .readiness_probe
            .mut_or_insert_default()
            .termination_grace_period_seconds = Some(30)
    });
    assert_eq!(
        e,
        "sandbox.containers[0].readinessProbe.terminationGracePeriodSeconds: \
         Invalid value: 30: must not be set for readinessProbes"
    );
    let e = refused(|w| liveness(w).termination_grace_period_seconds = Some(0));
    assert!(e.ends_with("must be greater than 0"), "{e}");
}

#[test]
fn ports_must_fit_in_sixteen_bits_and_not_be_zero() {
    let tcp = |port: u32| {
        move |w: &mut pb::SandboxSpec| {
            liveness(w).action = Some(pb::probe::Action::TcpSocket(pb::TcpSocketAction {
                port,
                ..Default::default()
            }))
        }
    };
    assert_eq!(
        refused(tcp(0)),
        "sandbox.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: \
         must be between 1 and 65535, inclusive"
    );
    assert!(refused(tcp(65536)).contains("tcpSocket.port: Invalid value: 65536"));
    let e = refused(|w| readiness_http(w).port = 70000);
    assert!(
        e.starts_with("sandbox.containers[0].readinessProbe.httpGet.port: Invalid value: 70000")
    );
    let e = refused(|w| {
        w.init_containers[1]
            .liveness_probe
            .mut_or_insert_default()
            .action = Some(pb::probe::Action::Grpc(pb::GrpcAction::default()))
    });
    assert!(e.starts_with("sandbox.initContainers[1].livenessProbe.grpc.port: Invalid value: 0"));
}

#[test]
fn http_get_paths_start_with_a_slash() {
    let e = refused(|w| readiness_http(w).path = "healthz".into());
    assert_eq!(
        e,
        "sandbox.containers[0].readinessProbe.httpGet.path: Invalid value: \"healthz\": \
         must start with '/'"
    );
    let e = refused(|w| readiness_http(w).path = "/a b".into());
    assert!(e.contains("httpGet.path: Invalid value"), "{e}");
    // Empty is the root.
    let mut wire = pb::SandboxSpec::from(&spec());
    readiness_http(&mut wire).path = String::new();
    let s = sandbox_from_pb(wire, "sandbox").unwrap();
    match &s.containers[0].readiness_probe.as_ref().unwrap().action {
        crate::lifecycle::ProbeAction::HttpGet(h) => assert_eq!(h.path, "/"),
        other => panic!("not an httpGet: {other:?}"),
    }
}

#[test]
fn http_get_scheme_and_headers_are_checked() {
    let e = refused(|w| readiness_http(w).scheme = EnumOrUnknown::default());
    assert_eq!(
        e,
        "sandbox.containers[0].readinessProbe.httpGet.scheme: Required value"
    );
    let e = refused(|w| readiness_http(w).headers[0].name = "X Bad\r\n".into());
    assert!(
        e.starts_with("sandbox.containers[0].readinessProbe.httpGet.httpHeaders[0].name: Invalid"),
        "{e}"
    );
    let e = refused(|w| readiness_http(w).headers[0].value = "a\r\nInjected: 1".into());
    assert!(e.contains("httpHeaders[0].value: Invalid value"), "{e}");
}

#[test]
fn probes_and_hooks_need_an_action() {
    let e = refused(|w| {
        app(w).startup_probe.mut_or_insert_default().action =
            Some(pb::probe::Action::Exec(pb::ExecAction::default()))
    });
    assert_eq!(
        e,
        "sandbox.containers[0].startupProbe.exec.command: Required value"
    );
    let e = refused(|w| liveness(w).action = None);
    assert_eq!(
        e,
        "sandbox.containers[0].livenessProbe: Required value: must specify a handler type"
    );
    let e = refused(|w| {
        app(w).lifecycle.mut_or_insert_default().pre_stop =
            MessageField::some(pb::HookAction::default())
    });
    assert_eq!(
        e,
        "sandbox.containers[0].lifecycle.preStop: Required value: must specify a handler type"
    );
    let e = refused(|w| {
        w.init_containers[1]
            .lifecycle
            .mut_or_insert_default()
            .post_start = MessageField::some(pb::HookAction {
            action: Some(pb::hook_action::Action::Exec(pb::ExecAction::default())),
            ..Default::default()
        })
    });
    assert_eq!(
        e,
        "sandbox.initContainers[1].lifecycle.postStart.exec.command: Required value"
    );
}

#[test]
fn a_sleep_hook_may_not_outlast_the_grace_period() {
    let e = refused(|w| {
        app(w).lifecycle.mut_or_insert_default().pre_stop = MessageField::some(pb::HookAction {
            action: Some(pb::hook_action::Action::Sleep(pb::SleepAction {
                seconds: 8,
                ..Default::default()
            })),
            ..Default::default()
        })
    });
    assert_eq!(
        e,
        "sandbox.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 8: \
         must be non-negative and less than terminationGracePeriodSeconds (7)"
    );
}

#[test]
fn container_restart_policy_is_always_and_only_on_init_containers() {
    let e = refused(|w| {
        app(w).restart_policy = EnumOrUnknown::new(pb::RestartPolicy::RESTART_POLICY_ALWAYS)
    });
    assert_eq!(
        e,
        "sandbox.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"
    );
    let e = refused(|w| {
        w.init_containers[0].restart_policy =
            EnumOrUnknown::new(pb::RestartPolicy::RESTART_POLICY_NEVER)
    });
    assert_eq!(
        e,
        "sandbox.initContainers[0].restartPolicy: Unsupported value: \"Never\": \
         supported values: \"Always\""
    );
    let e = refused(|w| w.init_containers[0].restart_policy = EnumOrUnknown::from_i32(9));
    assert_eq!(
        e,
        "sandbox.initContainers[0].restartPolicy: Unsupported value: 9"
    );
}

#[test]
fn plain_init_containers_have_no_probes_or_hooks() {
    let e = refused(|w| {
        let probe = w.init_containers[1].liveness_probe.clone();
        w.init_containers[0].liveness_probe = probe;
    });
    assert_eq!(
        e,
        "sandbox.initContainers[0].livenessProbe: Forbidden: may not be set for init \
         containers without restartPolicy=Always"
    );
    let e = refused(|w| {
        let lifecycle = w.init_containers[1].lifecycle.clone();
        w.init_containers[0].lifecycle = lifecycle;
    });
    assert!(
        e.starts_with("sandbox.initContainers[0].lifecycle: Forbidden"),
        "{e}"
    );
}

#[test]
fn container_names_are_unique_across_init_and_regular() {
    let e = refused(|w| app(w).name = "sidecar".into());
    assert_eq!(
        e,
        "sandbox.containers[0].name: Duplicate value: \"sidecar\""
    );
}

#[test]
fn volumes_are_checked() {
    let e = refused(|w| w.volumes[1].name = "scratch".into());
    assert_eq!(e, "sandbox.volumes[1].name: Duplicate value: \"scratch\"");
    let e = refused(|w| w.volumes[0].name = "../etc".into());
    assert!(
        e.starts_with("sandbox.volumes[0].name: Invalid value: \"../etc\""),
        "{e}"
    );
    let e = refused(|w| w.volumes[2].name.clear());
    assert_eq!(e, "sandbox.volumes[2].name: Required value");
    let e = refused(|w| w.volumes[2].medium = None);
    assert_eq!(e, "sandbox.volumes[2].medium: Required value");
    let e = refused(|w| w.volumes[0].medium = Some(pb::volume::Medium::BlockSerial(String::new())));
    assert_eq!(e, "sandbox.volumes[0].blockSerial: Required value");
}

#[test]
fn volume_mounts_are_checked() {
    let e = refused(|w| app(w).volume_mounts[1].name = "nope".into());
    assert_eq!(
        e,
        "sandbox.containers[0].volumeMounts[1].name: Not found: \"nope\""
    );
    let e = refused(|w| app(w).volume_mounts[0].mount_path = "data".into());
    assert_eq!(
        e,
        "sandbox.containers[0].volumeMounts[0].mountPath: Invalid value: \"data\": \
         must be an absolute path"
    );
    let e = refused(|w| app(w).volume_mounts[1].mount_path = "/data".into());
    assert!(e.ends_with("must be unique"), "{e}");
    let e = refused(|w| app(w).volume_mounts[0].sub_path = Some("/abs".into()));
    assert_eq!(
        e,
        "sandbox.containers[0].volumeMounts[0].subPath: Invalid value: \"/abs\": \
         must be a relative path"
    );
    let e = refused(|w| w.init_containers[0].volume_mounts[0].sub_path = Some("a/../../x".into()));
    assert_eq!(
        e,
        "sandbox.initContainers[0].volumeMounts[0].subPath: Invalid value: \"a/../../x\": \
         must not contain '..'"
    );
}

#[test]
fn termination_message_settings_are_checked() {
    let e = refused(|w| app(w).termination_message_path = Some("msg".into()));
    assert_eq!(
        e,
        "sandbox.containers[0].terminationMessagePath: Invalid value: \"msg\": \
         must be an absolute path"
    );
    let e = refused(|w| app(w).termination_message_policy = EnumOrUnknown::from_i32(7));
    assert_eq!(
        e,
        "sandbox.containers[0].terminationMessagePolicy: Unsupported value: 7"
    );
}

#[test]
fn active_deadline_is_positive() {
    let e = refused(|w| w.active_deadline_seconds = Some(0));
    assert_eq!(
        e,
        "sandbox.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"
    );
}
