//! Conversions between the typed forms ([`crate::spec`], [`crate::status`],
//! [`crate::event`], [`crate::container`], [`crate::lifecycle`],
//! [`crate::volume`]) and the protobuf messages ([`crate::pb`]).
//!
//! Typed → wire cannot fail. Wire → typed checks what protobuf cannot: a
//! required message or enum that is missing or unknown, a number out of
//! range, a path that is not absolute, a mount of a volume that does not
//! exist, ... is an error naming the field
//! (`sandbox.containers[1].livenessProbe.periodSeconds`), like the API
//! server's.

mod container;
mod event;
#[cfg(test)]
mod fixtures;
mod lifecycle;
mod spec;
mod status;
mod volume;

pub use volume::is_dns_label;

pub use container::create_container_from_pb;
pub use event::event_from_pb;
pub use spec::sandbox_from_pb;
pub use status::sandbox_status_from_pb;

/// A message off the wire that does not make a valid typed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConvertError {
    /// The field's path, e.g. `sandbox.containers[0].rootfs`.
    pub field: String,
    pub problem: String,
}

impl ConvertError {
    pub(crate) fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ConvertError {
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub(crate) fn required(field: impl Into<String>) -> Self {
        ConvertError::new(field, "Required value")
    }

    pub(crate) fn unknown_enum(field: impl Into<String>, value: i32) -> Self {
        ConvertError::new(field, format!("Unsupported value: {value}"))
    }

    /// `Invalid value: <value>: <detail>` (strings are given quoted).
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        detail: &str,
    ) -> Self {
        ConvertError::new(field, format!("Invalid value: {value}: {detail}"))
    }

    /// `Forbidden: <detail>`.
    pub(crate) fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        ConvertError::new(field, format!("Forbidden: {detail}"))
    }

    /// `Duplicate value: "<value>"`.
    pub(crate) fn duplicate(field: impl Into<String>, value: &str) -> Self {
        ConvertError::new(field, format!("Duplicate value: {value:?}"))
    }

    /// `Not found: "<value>"`.
    pub(crate) fn not_found(field: impl Into<String>, value: &str) -> Self {
        ConvertError::new(field, format!("Not found: {value:?}"))
    }
}

/// Result of a wire → typed conversion.
pub type Result<T> = std::result::Result<T, ConvertError>;
