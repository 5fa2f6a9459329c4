//! The set of Pod fields podvm implements. Anything else in a manifest is
//! refused by name rather than silently ignored: a user who asks for a
//! `hostPath` volume or a `resources` limit must learn that it will not
//! happen.
//!
//! Fields the API server sets (`metadata.uid`, `status`, …) are accepted and
//! ignored, so that `podvm get pod -o yaml` output can be applied again.

use serde_json::{Map, Value};

use super::FieldError;

/// What may appear under a key.
enum Shape {
    /// Any value; its type is checked when the Pod is decoded.
    Leaf,
    /// An object with these keys.
    Object(&'static [(&'static str, Shape)]),
    /// A list of objects with these keys.
    List(&'static [(&'static str, Shape)]),
}

use Shape::{Leaf, List, Object};

const FIELD_REF: &[(&str, Shape)] = &[("fieldPath", Leaf), ("apiVersion", Leaf)];
const VALUE_FROM: &[(&str, Shape)] = &[("fieldRef", Object(FIELD_REF))];
const ENV: &[(&str, Shape)] = &[
    ("name", Leaf),
    ("value", Leaf),
    ("valueFrom", Object(VALUE_FROM)),
];
const PORT: &[(&str, Shape)] = &[("name", Leaf), ("containerPort", Leaf), ("protocol", Leaf)];
const CONTAINER_SECURITY: &[(&str, Shape)] = &[("runAsUser", Leaf), ("runAsGroup", Leaf)];
const POD_SECURITY: &[(&str, Shape)] = &[
    ("runAsUser", Leaf),
    ("runAsGroup", Leaf),
    ("supplementalGroups", Leaf),
];
const EXEC: &[(&str, Shape)] = &[("command", Leaf)];
const HTTP_HEADER: &[(&str, Shape)] = &[("name", Leaf), ("value", Leaf)];
const HTTP_GET: &[(&str, Shape)] = &[
    ("host", Leaf),
    ("port", Leaf),
    ("path", Leaf),
    ("scheme", Leaf),
    ("httpHeaders", List(HTTP_HEADER)),
];
const TCP_SOCKET: &[(&str, Shape)] = &[("host", Leaf), ("port", Leaf)];
const GRPC: &[(&str, Shape)] = &[("port", Leaf), ("service", Leaf)];
const PROBE: &[(&str, Shape)] = &[
    ("exec", Object(EXEC)),
    ("httpGet", Object(HTTP_GET)),
    ("tcpSocket", Object(TCP_SOCKET)),
    ("grpc", Object(GRPC)),
    ("initialDelaySeconds", Leaf),
    ("periodSeconds", Leaf),
    ("timeoutSeconds", Leaf),
    ("successThreshold", Leaf),
    ("failureThreshold", Leaf),
    ("terminationGracePeriodSeconds", Leaf),
];
const SLEEP: &[(&str, Shape)] = &[("seconds", Leaf)];
/// A lifecycle hook. `tcpSocket` is deprecated for hooks and kubelet does
/// not run it, so it is refused by name.
const HOOK: &[(&str, Shape)] = &[
    ("exec", Object(EXEC)),
    ("httpGet", Object(HTTP_GET)),
    ("sleep", Object(SLEEP)),
];
const LIFECYCLE: &[(&str, Shape)] = &[("postStart", Object(HOOK)), ("preStop", Object(HOOK))];
const VOLUME_MOUNT: &[(&str, Shape)] = &[
    ("name", Leaf),
    ("mountPath", Leaf),
    ("readOnly", Leaf),
    ("subPath", Leaf),
];
/// App and init containers share one shape, as in the API; a
/// `restartPolicy` on an app container is refused by validation, with the
/// API server's message.
const CONTAINER: &[(&str, Shape)] = &[
    ("name", Leaf),
    ("image", Leaf),
    ("imagePullPolicy", Leaf),
    ("command", Leaf),
    ("args", Leaf),
    ("env", List(ENV)),
    ("workingDir", Leaf),
    ("ports", List(PORT)),
    ("securityContext", Object(CONTAINER_SECURITY)),
    ("terminationMessagePath", Leaf),
    ("terminationMessagePolicy", Leaf),
    ("restartPolicy", Leaf),
    ("startupProbe", Object(PROBE)),
    ("livenessProbe", Object(PROBE)),
    ("readinessProbe", Object(PROBE)),
    ("lifecycle", Object(LIFECYCLE)),
    ("volumeMounts", List(VOLUME_MOUNT)),
];
const HOST_ALIAS: &[(&str, Shape)] = &[("ip", Leaf), ("hostnames", Leaf)];
const EMPTY_DIR: &[(&str, Shape)] = &[("medium", Leaf), ("sizeLimit", Leaf)];
/// Only `emptyDir`; any other volume type is refused by name.
const VOLUME: &[(&str, Shape)] = &[("name", Leaf), ("emptyDir", Object(EMPTY_DIR))];
const READINESS_GATE: &[(&str, Shape)] = &[("conditionType", Leaf)];
const SPEC: &[(&str, Shape)] = &[
    ("initContainers", List(CONTAINER)),
    ("containers", List(CONTAINER)),
    ("volumes", List(VOLUME)),
    ("restartPolicy", Leaf),
    ("terminationGracePeriodSeconds", Leaf),
    ("activeDeadlineSeconds", Leaf),
    ("readinessGates", List(READINESS_GATE)),
    ("hostname", Leaf),
    ("hostAliases", List(HOST_ALIAS)),
    ("securityContext", Object(POD_SECURITY)),
    ("dnsPolicy", Leaf),
    ("enableServiceLinks", Leaf),
    ("nodeName", Leaf),
    ("schedulerName", Leaf),
];
const METADATA: &[(&str, Shape)] = &[
    ("name", Leaf),
    ("namespace", Leaf),
    ("labels", Leaf),
    ("annotations", Leaf),
    // Set by the server; accepted and ignored on input.
    ("uid", Leaf),
    ("resourceVersion", Leaf),
    ("creationTimestamp", Leaf),
    ("generation", Leaf),
    ("managedFields", Leaf),
];
const POD: &[(&str, Shape)] = &[
    ("apiVersion", Leaf),
    ("kind", Leaf),
    ("metadata", Object(METADATA)),
    ("spec", Object(SPEC)),
    ("status", Leaf),
];

/// Returns one error per field podvm does not implement.
pub fn check_supported(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match value {
        Value::Object(map) => check_object(map, "", POD, &mut errors),
        _ => errors.push(FieldError::new(
            "<root>",
            "a Pod manifest must be a mapping",
        )),
    }
    errors
}

fn check_object(
    map: &Map<String, Value>,
    prefix: &str,
    allowed: &[(&str, Shape)],
    errors: &mut Vec<FieldError>,
) {
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let Some((_, shape)) = allowed.iter().find(|(name, _)| name == key) else {
            errors.push(FieldError::new(path, "field is not supported by podvm"));
            continue;
        };
        match (shape, value) {
            (Leaf, _) | (_, Value::Null) => {}
            (Object(inner), Value::Object(m)) => check_object(m, &path, inner, errors),
            (List(inner), Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    match item {
                        Value::Object(m) => check_object(m, &item_path, inner, errors),
                        _ => errors.push(FieldError::new(item_path, "must be a mapping")),
                    }
                }
            }
            (Object(_), _) => errors.push(FieldError::new(path, "must be a mapping")),
            (List(_), _) => errors.push(FieldError::new(path, "must be a list")),
        }
    }
}
