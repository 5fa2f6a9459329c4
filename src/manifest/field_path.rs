//! The Downward API's `fieldRef.fieldPath` for environment variables:
//! which pod fields podvm resolves, parsed once into a typed path, checked
//! the way the API server checks it (`validateEnvVarValueFrom` with
//! `validFieldPathExpressionsEnv`) and resolved against the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use super::names::qualified_name_errors;

/// A pod field an environment variable can take its value from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    Name,
    Namespace,
    Uid,
    NodeName,
    ServiceAccountName,
    /// `metadata.labels['KEY']`.
    Label(String),
    /// `metadata.annotations['KEY']`.
    Annotation(String),
}

/// The paths Kubernetes accepts for env that podvm resolves, as the error
/// lists them.
pub const SUPPORTED: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels['<KEY>']",
    "metadata.annotations['<KEY>']",
    "spec.nodeName",
    "spec.serviceAccountName",
];

/// Paths Kubernetes accepts that need the pod network (issue 10).
const NEEDS_NETWORK: &[&str] = &[
    "status.podIP",
    "status.podIPs",
    "status.hostIP",
    "status.hostIPs",
];

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPathError {
    /// Not a path podvm resolves (`Unsupported value`).
    Unsupported,
    /// An IP the pod does not have yet.
    NeedsNetwork,
    /// A subscript that is not a valid key (`Invalid value`).
    BadKey(String),
}

impl FieldPath {
    /// Parses and checks `path`.
    pub fn parse(path: &str) -> Result<FieldPath, FieldPathError> {
        let plain = match path {
            "metadata.name" => Some(FieldPath::Name),
            "metadata.namespace" => Some(FieldPath::Namespace),
            "metadata.uid" => Some(FieldPath::Uid),
            "spec.nodeName" => Some(FieldPath::NodeName),
            "spec.serviceAccountName" => Some(FieldPath::ServiceAccountName),
            _ => None,
        };
        if let Some(p) = plain {
            return Ok(p);
        }
        if NEEDS_NETWORK.contains(&path) {
            return Err(FieldPathError::NeedsNetwork);
        }
        let subscript = |prefix: &str| {
            path.strip_prefix(prefix)?
                .strip_prefix("['")?
                .strip_suffix("']")
                .map(str::to_string)
        };
        if let Some(key) = subscript("metadata.labels") {
            return match qualified_name_errors(&key).into_iter().next() {
                None => Ok(FieldPath::Label(key)),
                Some(why) => Err(FieldPathError::BadKey(why)),
            };
        }
        if let Some(key) = subscript("metadata.annotations") {
            // The API server checks annotation keys lowercased.
            return match qualified_name_errors(&key.to_ascii_lowercase())
                .into_iter()
                .next()
            {
                None => Ok(FieldPath::Annotation(key)),
                Some(why) => Err(FieldPathError::BadKey(why)),
            };
        }
        Err(FieldPathError::Unsupported)
    }

    /// The value for `pod` running on `node` (kubelet's: a missing label
    /// or annotation is empty; a pod without a service account runs as
    /// `default`, which admission would have set).
    pub fn resolve(&self, pod: &Pod, node: &str) -> String {
        let m = &pod.metadata;
        let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
            map.as_ref()
                .and_then(|m| m.get(key))
                .cloned()
                .unwrap_or_default()
        };
        match self {
            FieldPath::Name => m.name.clone().unwrap_or_default(),
            FieldPath::Namespace => m.namespace.clone().unwrap_or_else(|| "default".into()),
            FieldPath::Uid => m.uid.clone().unwrap_or_default(),
            FieldPath::NodeName => node.to_string(),
            FieldPath::ServiceAccountName => pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            FieldPath::Label(key) => lookup(&m.labels, key),
            FieldPath::Annotation(key) => lookup(&m.annotations, key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web", "namespace": "shop", "uid": "u-1",
                "labels": {"app": "web", "example.com/tier": "front"},
                "annotations": {"Owner": "team-a"}
            },
            "spec": {"containers": []}
        }))
        .unwrap()
    }

    #[test]
    fn paths_parse_and_resolve_like_kubelet() {
        let p = pod();
        let cases = [
            ("metadata.name", "web"),
            ("metadata.namespace", "shop"),
            ("metadata.uid", "u-1"),
            ("spec.nodeName", "node-1"),
            ("spec.serviceAccountName", "default"),
            ("metadata.labels['app']", "web"),
            ("metadata.labels['example.com/tier']", "front"),
            ("metadata.labels['missing']", ""),
            ("metadata.annotations['Owner']", "team-a"),
        ];
        for (path, value) in cases {
            let parsed = FieldPath::parse(path).unwrap();
            assert_eq!(parsed.resolve(&p, "node-1"), value, "{path}");
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            FieldPath::parse("spec.hostname"),
            Err(FieldPathError::Unsupported)
        );
        assert_eq!(
            FieldPath::parse("metadata.labels"),
            Err(FieldPathError::Unsupported)
        );
        assert_eq!(
            FieldPath::parse("status.podIP"),
            Err(FieldPathError::NeedsNetwork)
        );
        assert!(matches!(
            FieldPath::parse("metadata.labels['bad key']"),
            Err(FieldPathError::BadKey(_))
        ));
        assert!(matches!(
            FieldPath::parse("metadata.annotations['-x']"),
            Err(FieldPathError::BadKey(_))
        ));
    }
}
