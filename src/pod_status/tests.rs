//! Status from the agent's report and the host's side; kubectl's STATUS
//! strings; readiness gates and `patch`.

use k8s_openapi::api::core::v1::Pod;
use podvm_proto::{
    ContainerState, ContainerStatus, PodCondition, PodConditionType, PodPhase, SandboxStatus,
};
use serde_json::json;

use super::conditions::{ConditionStatus, GateCondition};
use super::host::ReadyMark;
use super::patch::{self, PatchError, PatchKind, PatchOutcome};
use super::printer::PodRow;
use super::*;
use crate::owner::{FailureReason, Lifecycle};
use crate::state::{PodRecord, StateDir};

const T0: &str = "2026-01-01T00:00:00Z";

fn now() -> jiff::Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn pod_json(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn pod(containers: usize, gates: &[&str]) -> Pod {
    let containers: Vec<_> = (0..containers)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox"}))
        .collect();
    let gates: Vec<_> = gates.iter().map(|g| json!({"conditionType": g})).collect();
    pod_json(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": T0},
        "spec": {"containers": containers, "readinessGates": gates}
    }))
}

fn condition(kind: PodConditionType, status: bool, at: &str) -> PodCondition {
    PodCondition {
        condition_type: kind,
        status,
        reason: (!status).then(|| "ContainersNotReady".into()),
        message: (!status).then(|| "containers with unready status: [c0]".into()),
        last_transition_time: at.into(),
    }
}

fn running(ready: bool) -> ContainerStatus {
    ContainerStatus {
        name: "c0".into(),
        container_id: "id0".into(),
        image: "busybox".into(),
        image_id: "sha256:x".into(),
        state: ContainerState::Running {
            started_at: T0.into(),
        },
        last_state: None,
        restart_count: 0,
        ready,
        started: true,
    }
}

fn report(ready: bool, at: &str) -> SandboxStatus {
    SandboxStatus {
        sandbox_ready: true,
        started_at: Some(T0.into()),
        phase: PodPhase::Running,
        conditions: vec![
            condition(PodConditionType::ContainersReady, ready, at),
            condition(PodConditionType::Initialized, true, T0),
            condition(PodConditionType::PodReadyToStartContainers, true, T0),
        ],
        containers: vec![running(ready)],
        ..Default::default()
    }
}

fn types(st: &k8s_openapi::api::core::v1::PodStatus) -> Vec<(String, String)> {
    st.conditions
        .iter()
        .flatten()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect()
}

fn gate(kind: &str, status: ConditionStatus, at: &str) -> GateCondition {
    GateCondition {
        condition_type: kind.into(),
        status,
        reason: None,
        message: None,
        last_transition_time: at.into(),
        last_probe_time: None,
    }
}

#[test]
fn the_agents_phase_and_conditions_come_in_kubelets_order() {
    let p = pod(1, &[]);
    let st = pod_status(
        &p,
        Some(&report(true, "2026-01-01T00:00:05Z")),
        &Default::default(),
    );
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let order: Vec<String> = types(&st).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        order,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    let ready = &st.conditions.as_ref().unwrap()[2];
    assert_eq!(ready.status, "True");
    assert_eq!(
        ready.last_transition_time.as_ref().unwrap().0.to_string(),
        "2026-01-01T00:00:05Z",
        "without gates Ready moves with ContainersReady"
    );
    let c = &st.container_statuses.unwrap()[0];
    assert!(c.ready && c.started == Some(true));

    let st = pod_status(&p, Some(&report(false, T0)), &Default::default());
    let ready = &st.conditions.unwrap()[2];
    assert_eq!(
        (
            ready.status.as_str(),
            ready.reason.as_deref(),
            ready.message.as_deref()
        ),
        (
            "False",
            Some("ContainersNotReady"),
            Some("containers with unready status: [c0]")
        )
    );
    assert_eq!(
        pod_status(&p, None, &Default::default()).phase.as_deref(),
        Some("Unknown")
    );
}

#[test]
fn ready_waits_for_every_readiness_gate_with_kubelets_messages() {
    let p = pod(1, &["example.com/a", "example.com/b"]);
    let mut host = HostConditions {
        gates: vec![gate(
            "example.com/a",
            ConditionStatus::False,
            "2026-01-01T00:01:00Z",
        )],
        ready: None,
    };
    let st = pod_status(&p, Some(&report(true, T0)), &host);
    let conditions = st.conditions.unwrap();
    let ready = &conditions[2];
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason.as_deref(), Some("ReadinessGatesNotReady"));
    assert_eq!(
        ready.message.as_deref(),
        Some("the status of pod readiness gate \"example.com/a\" is not \"True\", but False, corresponding condition of pod readiness gate \"example.com/b\" does not exist.")
    );
    assert_eq!(
        conditions.last().unwrap().type_,
        "example.com/a",
        "gates are listed too"
    );

    host.gates = vec![
        gate(
            "example.com/a",
            ConditionStatus::True,
            "2026-01-01T00:02:00Z",
        ),
        gate(
            "example.com/b",
            ConditionStatus::True,
            "2026-01-01T00:03:00Z",
        ),
    ];
    host.ready = Some(ReadyMark {
        status: true,
        since: "2026-01-01T00:03:00Z".into(),
    });
    let st = pod_status(&p, Some(&report(true, T0)), &host);
    let ready = &st.conditions.unwrap()[2];
    assert_eq!(ready.status, "True");
    assert_eq!(
        ready.last_transition_time.as_ref().unwrap().0.to_string(),
        "2026-01-01T00:03:00Z"
    );
}

fn record(p: Pod, lifecycle: Lifecycle, last: Option<SandboxStatus>) -> PodRecord {
    PodRecord {
        pod: p,
        vm: None,
        last_status: last,
        lifecycle,
        events: vec![],
        watch: Default::default(),
    }
}

#[test]
fn the_owners_record_decides_creating_failed_and_terminating() {
    let creating = pod_of_record(
        &record(pod(1, &[]), Lifecycle::Creating, None),
        &HostSide::default(),
    );
    let row = summary(&creating, now());
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/1", "ContainerCreating")
    );
    assert_eq!(creating.status.unwrap().phase.as_deref(), Some("Pending"));

    let with_init = pod_json(json!({
        "metadata": {"name": "web"},
        "spec": {"initContainers": [{"name": "i0"}], "containers": [{"name": "c0"}]}
    }));
    let creating = pod_of_record(
        &record(with_init, Lifecycle::Creating, None),
        &HostSide::default(),
    );
    assert_eq!(summary(&creating, now()).status, "Init:0/1");

    let failed = pod_of_record(
        &record(
            pod(1, &[]),
            Lifecycle::Failed {
                reason: FailureReason::VmExited,
                message: "the pod's VM process (qemu) was killed by SIGKILL".into(),
            },
            Some(report(true, T0)),
        ),
        &HostSide::default(),
    );
    let st = failed.status.clone().unwrap();
    assert_eq!(
        (st.phase.as_deref(), st.reason.as_deref()),
        (Some("Failed"), Some("VMExited"))
    );
    let c = &st.container_statuses.unwrap()[0];
    let t = c.state.clone().unwrap().terminated.unwrap();
    assert_eq!(
        (t.exit_code, t.reason.as_deref()),
        (137, Some("ContainerStatusUnknown"))
    );
    assert!(c.last_state.clone().unwrap().running.is_some());
    let ready = failed.status.unwrap().conditions.unwrap()[2].clone();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );

    let host = HostSide {
        conditions: Default::default(),
        deletion: Some(crate::owner::DeleteRequest {
            grace_period_seconds: 30,
            requested_at: Some(T0.into()),
        }),
    };
    let deleting = pod_of_record(
        &record(pod(1, &[]), Lifecycle::Deleting, Some(report(true, T0))),
        &host,
    );
    assert_eq!(summary(&deleting, now()).status, "Terminating");
    assert_eq!(
        deleting.metadata.deletion_timestamp.unwrap().0.to_string(),
        "2026-01-01T00:00:30Z",
        "the API server's deletionTimestamp: asked + grace"
    );
    assert_eq!(deleting.metadata.deletion_grace_period_seconds, Some(30));
}

/// A pod with `inits` (name, sidecar) and `apps`, and the given status.
fn printed(inits: &[(&str, bool)], apps: &[&str], status: serde_json::Value) -> PodRow {
    let inits: Vec<_> = inits
        .iter()
        .map(|(n, sidecar)| {
            if *sidecar {
                json!({"name": n, "restartPolicy": "Always"})
            } else {
                json!({"name": n})
            }
        })
        .collect();
    let apps: Vec<_> = apps.iter().map(|n| json!({"name": n})).collect();
    let p = pod_json(json!({
        "metadata": {"name": "web"},
        "spec": {"initContainers": inits, "containers": apps},
        "status": status
    }));
    summary(&p, now())
}

fn run_state() -> serde_json::Value {
    json!({"running": {"startedAt": T0}})
}

fn term(code: i32, reason: &str) -> serde_json::Value {
    json!({"terminated": {"exitCode": code, "reason": reason, "finishedAt": T0}})
}

fn wait(reason: &str) -> serde_json::Value {
    json!({"waiting": {"reason": reason}})
}

fn cs(name: &str, state: serde_json::Value, ready: bool) -> serde_json::Value {
    json!({"name": name, "image": "", "imageID": "", "ready": ready, "restartCount": 0, "started": ready, "state": state})
}

#[test]
fn init_containers_name_the_status_while_the_pod_initializes() {
    let status = |inits: Vec<serde_json::Value>| {
        json!({"phase": "Pending", "initContainerStatuses": inits,
               "containerStatuses": [cs("app", wait("PodInitializing"), false)]})
    };
    let two = [("i0", false), ("i1", false)];
    let row = printed(
        &two,
        &["app"],
        status(vec![
            cs("i0", wait("PodInitializing"), false),
            cs("i1", wait("PodInitializing"), false),
        ]),
    );
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/1", "Init:0/2")
    );
    let row = printed(
        &two,
        &["app"],
        status(vec![
            cs("i0", term(0, "Completed"), false),
            cs("i1", run_state(), false),
        ]),
    );
    assert_eq!(row.status, "Init:1/2");
    let row = printed(
        &two,
        &["app"],
        status(vec![
            cs("i0", term(1, "Error"), false),
            cs("i1", wait("PodInitializing"), false),
        ]),
    );
    assert_eq!(row.status, "Init:Error");
    let row = printed(
        &two,
        &["app"],
        status(vec![
            cs("i0", wait("CrashLoopBackOff"), false),
            cs("i1", wait("PodInitializing"), false),
        ]),
    );
    assert_eq!(row.status, "Init:CrashLoopBackOff");
    let signal = json!({"terminated": {"exitCode": 137, "signal": 9, "finishedAt": T0}});
    let row = printed(&two, &["app"], status(vec![cs("i0", signal, false)]));
    assert_eq!(row.status, "Init:Signal:9");
    let code = json!({"terminated": {"exitCode": 3, "finishedAt": T0}});
    let row = printed(&two, &["app"], status(vec![cs("i0", code, false)]));
    assert_eq!(row.status, "Init:ExitCode:3");
    // All done: the app container's own waiting reason shows.
    let row = printed(
        &two,
        &["app"],
        status(vec![
            cs("i0", term(0, "Completed"), false),
            cs("i1", term(0, "Completed"), false),
        ]),
    );
    assert_eq!(row.status, "PodInitializing");
}

#[test]
fn sidecars_count_in_ready_and_do_not_block() {
    let status = json!({
        "phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [cs("proxy", run_state(), true)],
        "containerStatuses": [cs("app", run_state(), true)]
    });
    let row = printed(&[("proxy", true)], &["app"], status);
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("2/2", "Running")
    );
    // A sidecar not started yet holds initialization.
    let status = json!({
        "phase": "Pending",
        "initContainerStatuses": [cs("proxy", run_state(), false)],
        "containerStatuses": [cs("app", wait("PodInitializing"), false)]
    });
    let mut s = status.clone();
    s["initContainerStatuses"][0]["started"] = json!(false);
    let row = printed(&[("proxy", true)], &["app"], s);
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/2", "Init:0/1")
    );
}

#[test]
fn app_containers_name_the_status_first_in_spec_order() {
    let two = ["a", "b"];
    let row = printed(
        &[],
        &two,
        json!({"phase": "Succeeded", "containerStatuses": [cs("a", term(0, "Completed"), false), cs("b", term(0, "Completed"), false)]}),
    );
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("0/2", "Completed")
    );
    let row = printed(
        &[],
        &two,
        json!({"phase": "Failed", "containerStatuses": [cs("a", term(2, "Error"), false), cs("b", term(0, "Completed"), false)]}),
    );
    assert_eq!(row.status, "Error");
    let row = printed(
        &[],
        &two,
        json!({"phase": "Running", "containerStatuses": [cs("a", wait("CrashLoopBackOff"), false), cs("b", run_state(), true)]}),
    );
    assert_eq!(
        (row.ready.as_str(), row.status.as_str()),
        ("1/2", "CrashLoopBackOff")
    );
    let not_ready = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [cs("a", term(0, "Completed"), false), cs("b", run_state(), true)]});
    assert_eq!(printed(&[], &two, not_ready).status, "NotReady");
    let ready = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [cs("a", term(0, "Completed"), false), cs("b", run_state(), true)]});
    assert_eq!(printed(&[], &two, ready).status, "Running");
    let evicted = json!({"phase": "Failed", "reason": "Evicted", "containerStatuses": []});
    assert_eq!(printed(&[], &two, evicted).status, "Evicted");
}

#[test]
fn restarts_show_the_age_of_the_last_restart() {
    let mut c = cs("a", run_state(), true);
    c["restartCount"] = json!(3);
    c["lastState"] = json!({"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:07:30Z"}});
    let row = printed(
        &[],
        &["a"],
        json!({"phase": "Running", "containerStatuses": [c]}),
    );
    assert_eq!(row.restarts, "3 (2m30s ago)");
    let row = printed(
        &[],
        &["a"],
        json!({"phase": "Running", "containerStatuses": [cs("a", run_state(), true)]}),
    );
    assert_eq!(row.restarts, "0");
}

#[test]
fn patches_are_checked_like_the_api_server_checks_them() {
    let ok = patch::parse(
        r#"{"status":{"conditions":[{"type":"example.com/a","status":"True"}]}}"#,
        "web",
    )
    .unwrap();
    assert_eq!(ok.conditions.unwrap()[0].status, ConditionStatus::True);
    let err = |text: &str| patch::parse(text, "web").unwrap_err().to_string();
    assert_eq!(
        err(r#"{"status":{"conditions":[{"type":"x","status":"Maybe"}]}}"#),
        r#"The Pod "web" is invalid: status.conditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown""#
    );
    assert_eq!(
        err(r#"{"status":{"conditions":[{"type":"Ready","status":"True"},{"status":"True"}]}}"#),
        r#"The Pod "web" is invalid: [status.conditions[0].type: Forbidden: "Ready" is set by the kubelet; only the conditions of readiness gates can be patched, status.conditions[1].type: Required value]"#
    );
    assert_eq!(
        err(r#"{"status":{"conditions":[{"type":"x","status":"True","colour":"red"}]}}"#),
        r#"Error from server (BadRequest): strict decoding error: unknown field "status.conditions[0].colour""#
    );
    assert!(matches!(
        patch::parse("{not json", "web"),
        Err(PatchError::Parse { .. })
    ));
    assert!(err(r#"{"status":{"phase":"Failed"}}"#).contains("status.phase: Forbidden"));
    assert!(
        err(r#"{"status":{"conditions":[{"type":"no spaces","status":"True"}]}}"#)
            .contains(r#"status.conditions[0].type: Invalid value: "no spaces": name part must consist of alphanumeric characters"#),
    );
}

#[test]
fn merge_replaces_the_list_and_strategic_merges_by_type() {
    let there = vec![
        gate("a", ConditionStatus::True, T0),
        gate("b", ConditionStatus::False, T0),
    ];
    let p = patch::parse(
        r#"{"status":{"conditions":[{"type":"a","status":"True"},{"type":"c","status":"False"}]}}"#,
        "web",
    )
    .unwrap();
    let later = "2026-01-01T00:05:00Z";
    let merged = patch::apply(&there, &p, PatchKind::Merge, later);
    let summary: Vec<(&str, &str)> = merged
        .iter()
        .map(|g| (g.condition_type.as_str(), g.last_transition_time.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("a", T0), ("c", later)],
        "same status keeps its time"
    );
    let strategic = patch::apply(&there, &p, PatchKind::Strategic, later);
    let kinds: Vec<&str> = strategic
        .iter()
        .map(|g| g.condition_type.as_str())
        .collect();
    assert_eq!(kinds, ["a", "b", "c"]);
    let flip = patch::parse(
        r#"{"status":{"conditions":[{"type":"b","status":"True"}]}}"#,
        "web",
    )
    .unwrap();
    let flipped = patch::apply(&there, &flip, PatchKind::Strategic, later);
    assert_eq!(flipped[1].last_transition_time, later);
    let clear = patch::parse(r#"{"status":{"conditions":null}}"#, "web").unwrap();
    assert!(patch::apply(&there, &clear, PatchKind::Merge, later).is_empty());
}

#[test]
fn a_patch_survives_the_owners_writes_and_moves_ready() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::new(dir.path());
    state.create_pod_dir("default", "web").unwrap();
    let mut r = record(
        pod(1, &["example.com/a"]),
        Lifecycle::Running,
        Some(report(true, T0)),
    );
    state.save(&r).unwrap();
    let text = r#"{"status":{"conditions":[{"type":"example.com/a","status":"True"}]}}"#;
    let outcome = patch::patch_status(&state, "default", "web", PatchKind::Merge, text).unwrap();
    assert_eq!(outcome, PatchOutcome::Patched);
    let again = patch::patch_status(&state, "default", "web", PatchKind::Merge, text).unwrap();
    assert_eq!(again, PatchOutcome::Unchanged);
    // The owner writes its record again, as it does on every update.
    r.events.clear();
    state.save(&r).unwrap();
    let view = pod_view(&state, &state.load("default", "web").unwrap()).unwrap();
    let conditions = types(view.status.as_ref().unwrap());
    assert!(conditions.contains(&("example.com/a".into(), "True".into())));
    assert!(conditions.contains(&("Ready".into(), "True".into())));
    let host = HostConditions::load(&state.pod_dir("default", "web")).unwrap();
    let since = host.ready.clone().unwrap().since;
    // The containers turn unready: the record's save moves Ready's mark.
    r.last_status = Some(report(false, "2026-01-01T00:20:00Z"));
    state.save(&r).unwrap();
    let host = HostConditions::load(&state.pod_dir("default", "web")).unwrap();
    assert_eq!(
        host.ready,
        Some(ReadyMark {
            status: false,
            since: "2026-01-01T00:20:00Z".into()
        })
    );
    assert_ne!(since, "2026-01-01T00:20:00Z");
    assert!(matches!(
        patch::patch_status(&state, "default", "nope", PatchKind::Merge, text),
        Err(PatchError::NotFound { .. })
    ));
}
