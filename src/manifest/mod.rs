//! Kubernetes v1 Pod manifests: reading, the supported-field check, and
//! validation. Every error names the field it is about, the way the
//! Kubernetes API server does (`spec.containers[0].image: Required value`).

pub mod field_path;
mod fields;
mod names;

pub use names::qualified_name_errors;
pub mod quantity;
mod validate;

use std::fmt;
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// `Invalid value: <value>: <detail>`; strings are shown quoted, as
    /// the API server does.
    pub fn invalid(path: impl Into<String>, value: impl fmt::Debug, detail: &str) -> Self {
        Self::new(path, format!("Invalid value: {value:?}: {detail}"))
    }

    /// `Required value`, with an optional detail.
    pub fn required(path: impl Into<String>, detail: &str) -> Self {
        if detail.is_empty() {
            Self::new(path, "Required value")
        } else {
            Self::new(path, format!("Required value: {detail}"))
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(path: impl Into<String>, detail: &str) -> Self {
        Self::new(path, format!("Forbidden: {detail}"))
    }

    /// `Unsupported value: "<value>": supported values: "a", "b"`.
    pub fn not_supported(path: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self::new(
            path,
            format!(
                "Unsupported value: {value:?}: supported values: {}",
                list.join(", ")
            ),
        )
    }

    /// `Duplicate value: "<value>"`.
    pub fn duplicate(path: impl Into<String>, value: &str) -> Self {
        Self::new(path, format!("Duplicate value: {value:?}"))
    }

    /// `Not found: "<value>"`.
    pub fn not_found(path: impl Into<String>, value: &str) -> Self {
        Self::new(path, format!("Not found: {value:?}"))
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid YAML or JSON: {message}")]
    Syntax { path: String, message: String },
    #[error("{0}")]
    Invalid(InvalidPod),
}

/// A list of field errors, printed one per line.
#[derive(Debug)]
pub struct InvalidPod {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for InvalidPod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the Pod manifest is invalid:")?;
        for e in &self.errors {
            write!(f, "\n  * {e}")?;
        }
        Ok(())
    }
}

/// The namespace (default "default") and name of a validated Pod.
pub fn pod_key(pod: &Pod) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
    let name = pod
        .metadata
        .name
        .clone()
        .context("metadata.name: Required value")?;
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    Ok((namespace, name))
}

/// Reads a manifest file (`-` is stdin), checks it and returns the Pod.
pub fn load(path: &Path) -> Result<Pod, ManifestError> {
    let display = path.display().to_string();
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
            ManifestError::Read {
                path: display.clone(),
                source,
            }
        })?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: display.clone(),
            source,
        })?
    };
    parse(&text, &display)
}

/// Parses manifest text (YAML or JSON), checks it and returns the Pod.
pub fn parse(text: &str, origin: &str) -> Result<Pod, ManifestError> {
    let value = to_json_value(text, origin)?;
    let mut errors = fields::check_supported(&value);
    if !errors.is_empty() {
        return Err(ManifestError::Invalid(InvalidPod { errors }));
    }
    let pod: Pod = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        ManifestError::Invalid(InvalidPod {
            errors: vec![FieldError::new(
                if path == "." { "<root>".into() } else { path },
                e.into_inner().to_string(),
            )],
        })
    })?;
    errors.extend(validate::validate(&pod));
    if errors.is_empty() {
        Ok(pod)
    } else {
        Err(ManifestError::Invalid(InvalidPod { errors }))
    }
}

/// YAML is a superset of JSON, so one parser reads both. Exactly one
/// document is accepted.
fn to_json_value(text: &str, origin: &str) -> Result<serde_json::Value, ManifestError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(doc).map_err(|e| ManifestError::Syntax {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(ManifestError::Syntax {
            path: origin.to_string(),
            message: "the file holds no document".into(),
        }),
        n => Err(ManifestError::Syntax {
            path: origin.to_string(),
            message: format!("the file holds {n} documents; podvm takes one Pod per file"),
        }),
    }
}

#[cfg(test)]
mod tests;
