//! Manifest parsing and validation tests.

mod lifecycle;
mod volumes;

use super::*;

const GOOD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: demo
spec:
  restartPolicy: Never
  hostAliases:
  - ip: 10.1.2.3
    hostnames: [foo.local, bar]
  containers:
  - name: hello
    image: busybox
    command: ["sh", "-c", "echo hi"]
    env:
    - name: A
      value: "1"
    - name: POD
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
  - name: idle
    image: busybox:latest
"#;

fn errors_of(text: &str) -> Vec<String> {
    match parse(text, "test") {
        Err(ManifestError::Invalid(inv)) => inv.errors.iter().map(|e| e.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn accepts_a_good_pod_in_yaml_and_json() {
    let pod = parse(GOOD, "test").unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("demo"));
    let json = serde_json::to_string(&pod).unwrap();
    let again = parse(&json, "json").unwrap();
    assert_eq!(again.spec.unwrap().containers.len(), 2);
}

#[test]
fn names_unsupported_fields() {
    let text = GOOD.replace("  - name: idle\n", "  - name: idle\n    resources: {}\n");
    let errs = errors_of(&text);
    assert_eq!(
        errs,
        ["spec.containers[1].resources: field is not supported by podvm"]
    );
    let errs = errors_of(&GOOD.replace(
        "spec:\n",
        "spec:\n  volumes:\n  - name: host\n    hostPath: {path: /etc}\n",
    ));
    assert_eq!(
        errs,
        ["spec.volumes[0].hostPath: field is not supported by podvm"]
    );
}

#[test]
fn a_probe_without_an_action_is_now_a_validation_error() {
    let text = GOOD.replace(
        "  - name: idle\n",
        "  - name: idle\n    livenessProbe: {}\n",
    );
    assert_eq!(
        errors_of(&text),
        ["spec.containers[1].livenessProbe: Required value: must specify a handler type"]
    );
}

#[test]
fn names_missing_and_invalid_fields() {
    let errs = errors_of(
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},
            "spec":{"restartPolicy":"Sometimes","containers":[{"name":"a"},{"name":"a","image":"x"}]}}"#,
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("metadata.name: Invalid value")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.restartPolicy: Unsupported value")),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"spec.containers[0].image: Required value".to_string()),
        "{errs:?}"
    );
    assert!(
        errs.contains(&"spec.containers[1].name: Duplicate value: \"a\"".to_string()),
        "{errs:?}"
    );
}

#[test]
fn type_errors_name_the_field() {
    let errs = errors_of(
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},
            "spec":{"containers":[{"name":"a","image":"x","command":"not-a-list"}]}}"#,
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("spec.containers[0].command:"),
        "{errs:?}"
    );
}

#[test]
fn wrong_kind_is_refused() {
    let errs = errors_of(
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"containers":[]}}"#,
    );
    assert!(
        errs[0].contains("Pod") || errs[0].contains("kind"),
        "{errs:?}"
    );
}

#[test]
fn syntax_errors_and_multiple_documents() {
    assert!(matches!(
        parse("a: [", "t"),
        Err(ManifestError::Syntax { .. })
    ));
    assert!(matches!(parse("", "t"), Err(ManifestError::Syntax { .. })));
    let two = format!("{GOOD}\n---\n{GOOD}");
    assert!(matches!(
        parse(&two, "t"),
        Err(ManifestError::Syntax { .. })
    ));
}

#[test]
fn unsupported_field_refs_and_bad_ids() {
    let text = GOOD.replace("metadata.name", "spec.hostname");
    let errs = errors_of(&text);
    assert!(
        errs[0].starts_with(
            "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.hostname\": supported values:"
        ),
        "{errs:?}"
    );
    let text = GOOD.replace("metadata.name", "status.podIP");
    assert_eq!(
        errors_of(&text),
        ["spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Invalid value: \"status.podIP\": not supported by podvm until pods have a network (the pod has no IP yet)"]
    );
    let text = GOOD.replace("metadata.name", "metadata.labels['bad key']");
    let errs = errors_of(&text);
    assert!(
        errs[0].starts_with("spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Invalid value: \"metadata.labels['bad key']\": name part must consist of"),
        "{errs:?}"
    );
    // Labels, annotations and the service account are accepted.
    for path in [
        "metadata.labels['app']",
        "metadata.annotations['example.com/Owner']",
        "spec.serviceAccountName",
    ] {
        assert!(
            parse(&GOOD.replace("metadata.name", path), "test").is_ok(),
            "{path}"
        );
    }
    let text = GOOD.replace(
        "  restartPolicy: Never\n",
        "  restartPolicy: Never\n  securityContext:\n    runAsUser: -1\n",
    );
    assert_eq!(
        errors_of(&text),
        ["spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive"]
    );
}
