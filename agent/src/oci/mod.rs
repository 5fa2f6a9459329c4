//! The OCI runtime spec (crate `oci-spec`) as the contract for a container.
//!
//! A container's spec is built for a Kubernetes container
//! (`container::spec`) or taken from a client (`CreateContainer`), checked
//! ([`check`]), bound to the pod's sandbox ([`sandbox`]), written into the
//! container's bundle as `config.json` ([`bundle`], as runc reads it) and
//! run by the launcher helper (`helper/`). [`defaults`] holds containerd's
//! defaults for a non-privileged container.

pub mod bundle;
pub mod check;
pub mod defaults;
pub mod sandbox;

use oci_spec::runtime::{Process, Spec};

/// Why a spec cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Not JSON, or JSON that is not an OCI runtime spec.
    #[error("not a valid OCI runtime spec: {0}")]
    Decode(String),
    /// A field podvm cannot run as given.
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
}

impl SpecError {
    pub fn invalid(field: impl Into<String>, why: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            why: why.into(),
        }
    }
}

/// Decodes a spec, naming the field where decoding failed.
pub fn parse(json: &[u8]) -> Result<Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        SpecError::Decode(if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        })
    })?;
    de.end()
        .map_err(|e| SpecError::Decode(format!("after the spec: {e}")))?;
    Ok(spec)
}

/// The value of `PATH` in a process's environment.
pub fn path_var(process: &Process) -> Option<&str> {
    process
        .env()
        .as_ref()?
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
}

/// A process's argv (empty when the spec has none).
pub fn args(process: &Process) -> &[String] {
    process.args().as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_field() {
        assert!(matches!(parse(b"{"), Err(SpecError::Decode(_))));
        let e = parse(
            br#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_NOPE"]}}}"#,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("process.capabilities.bounding"), "{text}");
        let e = parse(br#"{"ociVersion":"1.0.0","linux":{"namespaces":[{"type":"bogus"}]}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("linux.namespaces[0].type"), "{e}");
        assert!(parse(br#"{"ociVersion":"1.0.0"} trailing"#).is_err());
        let spec = parse(
            br#"{"ociVersion":"1.0.0","process":{"cwd":"/","user":{"uid":1,"gid":2},
            "args":["sh"],"env":["A=1","PATH=/bin"]}}"#,
        )
        .unwrap();
        let process = spec.process().as_ref().unwrap();
        assert_eq!(path_var(process), Some("/bin"));
        assert_eq!(args(process), ["sh"]);
    }
}
