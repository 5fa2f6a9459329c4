//! Init containers, sidecars, probes, hooks, termination messages and
//! pod-level lifecycle fields: accepted when valid, refused with the API
//! server's path and message when not.

use serde_json::{json, Value};

use super::*;

/// A Pod manifest (JSON text) with this `spec`.
pub(super) fn pod(spec: Value) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}).to_string()
}

/// A container named `name` with a port called `http`, plus `extra`.
pub(super) fn container(name: &str, extra: Value) -> Value {
    let mut c = json!({
        "name": name,
        "image": "busybox",
        "ports": [{"name": "http", "containerPort": 8080}],
    });
    if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
        c.extend(extra);
    }
    c
}

/// A pod whose one app container has `extra`.
pub(super) fn one(extra: Value) -> String {
    pod(json!({"containers": [container("app", extra)]}))
}

fn exec() -> Value {
    json!({"exec": {"command": ["true"]}})
}

#[test]
fn accepts_the_whole_lifecycle_surface() {
    let text = pod(json!({
        "activeDeadlineSeconds": 600,
        "terminationGracePeriodSeconds": 10,
        "readinessGates": [{"conditionType": "example.com/feature-1"}],
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        ],
        "initContainers": [
            container("setup", json!({"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]})),
            container("proxy", json!({
                "restartPolicy": "Always",
                "startupProbe": {"tcpSocket": {"port": "http"}, "failureThreshold": 30},
                "readinessProbe": {"httpGet": {"port": 8080, "path": "/ready"}},
                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
            })),
        ],
        "containers": [container("app", json!({
            "livenessProbe": {
                "httpGet": {"port": "http", "path": "/healthz", "scheme": "HTTPS",
                            "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                "initialDelaySeconds": 1, "periodSeconds": 0, "timeoutSeconds": 2,
                "successThreshold": 1, "failureThreshold": 2,
                "terminationGracePeriodSeconds": 5,
            },
            "readinessProbe": {"grpc": {"port": 9090, "service": "ready"}, "successThreshold": 3},
            "lifecycle": {
                "postStart": {"exec": {"command": ["touch", "/tmp/started"]}},
                "preStop": {"httpGet": {"port": "http", "path": "/quit"}},
            },
            "terminationMessagePath": "/tmp/msg",
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [
                {"name": "cache", "mountPath": "/cache", "readOnly": true, "subPath": "app"},
                {"name": "shm", "mountPath": "dev/shm"},
            ],
        }))],
    }));
    let pod = parse(&text, "test").unwrap();
    let spec = pod.spec.unwrap();
    assert_eq!(spec.init_containers.unwrap().len(), 2);
    assert_eq!(spec.volumes.unwrap().len(), 2);
}

#[test]
fn lifecycle_tcp_socket_hooks_are_refused_by_name() {
    let errs = errors_of(&one(json!({
        "lifecycle": {"postStart": {"tcpSocket": {"port": 80}}},
    })));
    assert_eq!(
        errs,
        ["spec.containers[0].lifecycle.postStart.tcpSocket: field is not supported by podvm"]
    );
}

#[test]
fn init_container_names_are_unique_across_both_lists() {
    let text = pod(json!({
        "initContainers": [container("app", json!({})), container("init", json!({})), container("init", json!({}))],
        "containers": [container("app", json!({}))],
    }));
    assert_eq!(
        errors_of(&text),
        [
            "spec.initContainers[0].name: Duplicate value: \"app\"",
            "spec.initContainers[2].name: Duplicate value: \"init\"",
        ]
    );
}

#[test]
fn container_restart_policy_is_always_and_only_on_init_containers() {
    let text = pod(json!({
        "initContainers": [container("init", json!({"restartPolicy": "OnFailure"}))],
        "containers": [container("app", json!({"restartPolicy": "Always"}))],
    }));
    assert_eq!(
        errors_of(&text),
        [
            "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers",
            "spec.initContainers[0].restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
        ]
    );
}

#[test]
fn probes_and_hooks_need_a_sidecar_among_init_containers() {
    let everything = json!({
        "lifecycle": {"postStart": exec()},
        "livenessProbe": exec(),
        "readinessProbe": exec(),
        "startupProbe": exec(),
    });
    let text = pod(json!({
        "initContainers": [container("init", everything.clone())],
        "containers": [container("app", json!({}))],
    }));
    let msg = "Forbidden: may not be set for init containers without restartPolicy=Always";
    assert_eq!(
        errors_of(&text),
        [
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe"
        ]
        .map(|f| format!("spec.initContainers[0].{f}: {msg}"))
    );
    let mut sidecar = everything;
    sidecar["restartPolicy"] = json!("Always");
    let text = pod(json!({
        "initContainers": [container("init", sidecar)],
        "containers": [container("app", json!({}))],
    }));
    parse(&text, "test").unwrap();
}

#[test]
fn a_probe_has_exactly_one_action() {
    let errs = errors_of(&one(json!({
        "livenessProbe": {"exec": {"command": ["true"]}, "httpGet": {"port": 80}, "grpc": {"port": 90}},
        "readinessProbe": {"periodSeconds": 5},
        "startupProbe": {"exec": {}},
    })));
    assert_eq!(
        errs,
        [
            "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].livenessProbe.grpc: Forbidden: may not specify more than 1 handler type",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            "spec.containers[0].startupProbe.exec.command: Required value",
        ]
    );
}

#[test]
fn probe_timings_are_not_negative_and_zero_takes_the_default() {
    let mut probe = exec();
    for (field, v) in [
        ("initialDelaySeconds", -1),
        ("timeoutSeconds", -2),
        ("periodSeconds", -3),
        ("failureThreshold", -4),
    ] {
        probe[field] = json!(v);
    }
    assert_eq!(
        errors_of(&one(json!({"readinessProbe": probe}))),
        [
            "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0",
            "spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -2: must be greater than or equal to 0",
            "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -3: must be greater than or equal to 0",
            "spec.containers[0].readinessProbe.failureThreshold: Invalid value: -4: must be greater than or equal to 0",
        ]
    );
    let mut zero = exec();
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        zero[field] = json!(0);
    }
    parse(
        &one(json!({"livenessProbe": zero.clone(), "startupProbe": zero})),
        "test",
    )
    .unwrap();
}

#[test]
fn liveness_and_startup_success_threshold_must_be_one() {
    let mut probe = exec();
    probe["successThreshold"] = json!(2);
    assert_eq!(
        errors_of(&one(
            json!({"livenessProbe": probe, "startupProbe": probe, "readinessProbe": probe})
        )),
        [
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1",
        ]
    );
}

#[test]
fn probe_grace_periods() {
    let mut probe = exec();
    probe["terminationGracePeriodSeconds"] = json!(0);
    let mut readiness = exec();
    readiness["terminationGracePeriodSeconds"] = json!(5);
    assert_eq!(
        errors_of(&one(json!({"livenessProbe": probe, "readinessProbe": readiness}))),
        [
            "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes",
        ]
    );
}

#[test]
fn ports_are_numbers_in_range_or_names_of_the_containers_ports() {
    let errs = errors_of(&one(json!({
        "livenessProbe": {"tcpSocket": {"port": 0}},
        "readinessProbe": {"httpGet": {"port": 70000}},
        "startupProbe": {"httpGet": {"port": "admin"}},
        "lifecycle": {
            "postStart": {"httpGet": {"port": "8080"}},
            "preStop": {"httpGet": {"port": "http", "scheme": "FTP", "httpHeaders": [{"name": "X Bad", "value": "v"}]}},
        },
    })));
    assert_eq!(
        errs,
        [
            "spec.containers[0].lifecycle.postStart.httpGet.port: Invalid value: \"8080\": must contain at least one letter (a-z)",
            "spec.containers[0].lifecycle.preStop.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
            "spec.containers[0].lifecycle.preStop.httpGet.httpHeaders[0].name: Invalid value: \"X Bad\": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
            "spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].startupProbe.httpGet.port: Not found: \"admin\": must be the name of one of the container's ports",
        ]
    );
}

#[test]
fn grpc_ports_are_numbers() {
    let errs = errors_of(&one(json!({"livenessProbe": {"grpc": {"port": 0}}})));
    assert_eq!(
        errs,
        ["spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive"]
    );
    let errs = errors_of(&one(json!({"livenessProbe": {"grpc": {"port": "http"}}})));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("spec.containers[0].livenessProbe.grpc.port: invalid type"),
        "{errs:?}"
    );
}

#[test]
fn container_port_names_are_valid_and_unique() {
    let errs = errors_of(&one(json!({
        "ports": [
            {"name": "http", "containerPort": 80},
            {"name": "http", "containerPort": 81},
            {"name": "Web_1", "containerPort": 82},
        ],
    })));
    assert_eq!(
        errs,
        [
            "spec.containers[0].ports[1].name: Duplicate value: \"http\"",
            "spec.containers[0].ports[2].name: Invalid value: \"Web_1\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
        ]
    );
}

#[test]
fn sleep_hooks_fit_the_grace_period() {
    let hooks = |seconds: i64| json!({"lifecycle": {"preStop": {"sleep": {"seconds": seconds}}}});
    assert_eq!(
        errors_of(&one(hooks(31))),
        ["spec.containers[0].lifecycle.preStop.sleep: Invalid value: 31: must be non-negative and less than terminationGracePeriodSeconds (30)"]
    );
    assert_eq!(
        errors_of(&one(hooks(-1))),
        ["spec.containers[0].lifecycle.preStop.sleep: Invalid value: -1: must be non-negative and less than terminationGracePeriodSeconds (30)"]
    );
    parse(&one(hooks(30)), "test").unwrap();
    parse(&one(hooks(0)), "test").unwrap();
    let short = pod(
        json!({"terminationGracePeriodSeconds": 5, "containers": [container("app", hooks(6))]}),
    );
    assert_eq!(
        errors_of(&short),
        ["spec.containers[0].lifecycle.preStop.sleep: Invalid value: 6: must be non-negative and less than terminationGracePeriodSeconds (5)"]
    );
}

#[test]
fn termination_messages() {
    let errs = errors_of(&one(json!({
        "terminationMessagePath": "tmp/msg",
        "terminationMessagePolicy": "Always",
    })));
    assert_eq!(
        errs,
        [
            "spec.containers[0].terminationMessagePolicy: Unsupported value: \"Always\": supported values: \"File\", \"FallbackToLogsOnError\"",
            "spec.containers[0].terminationMessagePath: Invalid value: \"tmp/msg\": must be an absolute path",
        ]
    );
    let long = format!("/{}", "a".repeat(4096));
    let errs = errors_of(&one(json!({"terminationMessagePath": long})));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].ends_with(": must be no more than 4096 characters"),
        "{errs:?}"
    );
}

#[test]
fn active_deadline_and_readiness_gates() {
    let text = pod(json!({
        "activeDeadlineSeconds": 0,
        "readinessGates": [{"conditionType": "ok"}, {"conditionType": "-bad"}],
        "containers": [container("app", json!({}))],
    }));
    assert_eq!(
        errors_of(&text),
        [
            "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            "spec.readinessGates[1].conditionType: Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
    let text = pod(
        json!({"activeDeadlineSeconds": 2147483648i64, "containers": [container("app", json!({}))]}),
    );
    assert_eq!(
        errors_of(&text),
        ["spec.activeDeadlineSeconds: Invalid value: 2147483648: must be between 1 and 2147483647, inclusive"]
    );
}
