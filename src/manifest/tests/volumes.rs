//! `emptyDir` volumes and volume mounts.

use serde_json::json;

use super::lifecycle::{container, one, pod};
use super::*;

#[test]
fn volumes_are_named_empty_dirs_of_a_known_medium_and_size() {
    let text = pod(json!({
        "volumes": [
            {"name": "a"},
            {"name": "b", "emptyDir": {"medium": "HugePages"}},
            {"name": "c", "emptyDir": {"sizeLimit": "1Gb"}},
            {"name": "d", "emptyDir": {"sizeLimit": "-1Mi"}},
            {"name": "Bad", "emptyDir": {}},
            {"name": "e", "emptyDir": {"sizeLimit": "1.5Gi"}},
            {"name": "e", "emptyDir": {}},
            {"name": "", "emptyDir": {}},
        ],
        "containers": [container("app", json!({}))],
    }));
    assert_eq!(
        errors_of(&text),
        [
            "spec.volumes[0]: Required value: must specify a volume type",
            "spec.volumes[1].emptyDir.medium: Unsupported value: \"HugePages\": supported values: \"\", \"Memory\"",
            "spec.volumes[2].emptyDir.sizeLimit: Invalid value: \"1Gb\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.volumes[3].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource quantity",
            "spec.volumes[4].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.volumes[6].name: Duplicate value: \"e\"",
            "spec.volumes[7].name: Required value",
        ]
    );
}

#[test]
fn mounts_name_a_valid_volume_once_per_path_inside_it() {
    let text = pod(json!({
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "broken", "emptyDir": {"medium": "Disk"}},
        ],
        "containers": [container("app", json!({
            "volumeMounts": [
                {"name": "nope", "mountPath": "/a"},
                {"name": "broken", "mountPath": "/b"},
                {"name": "data", "mountPath": "/a"},
                {"name": "data", "mountPath": ""},
                {"name": "data", "mountPath": "/c", "subPath": "/abs"},
                {"name": "data", "mountPath": "/d", "subPath": "x/../../y"},
                {"name": "data", "mountPath": "e", "subPath": "ok/sub..dir"},
            ],
        }))],
    }));
    let m = "spec.containers[0].volumeMounts";
    assert_eq!(
        errors_of(&text),
        [
            "spec.volumes[1].emptyDir.medium: Unsupported value: \"Disk\": supported values: \"\", \"Memory\"".to_string(),
            format!("{m}[0].name: Not found: \"nope\""),
            format!("{m}[1].name: Not found: \"broken\""),
            format!("{m}[2].mountPath: Invalid value: \"/a\": must be unique"),
            format!("{m}[3].mountPath: Required value"),
            format!("{m}[4].subPath: Invalid value: \"/abs\": must be a relative path"),
            format!("{m}[5].subPath: Invalid value: \"x/../../y\": must not contain '..'"),
        ]
    );
}

#[test]
fn init_containers_mount_volumes_too() {
    let text = pod(json!({
        "initContainers": [container("init", json!({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}))],
        "containers": [container("app", json!({}))],
    }));
    assert_eq!(
        errors_of(&text),
        ["spec.initContainers[0].volumeMounts[0].name: Not found: \"x\""]
    );
    let app = one(json!({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}));
    assert_eq!(
        errors_of(&app),
        ["spec.containers[0].volumeMounts[0].name: Not found: \"x\""]
    );
}
