//! [`Volume`] and [`VolumeMount`] ↔ their protobuf messages (protocol
//! 2.3). Off the wire, volume names are RFC 1123 labels, unique in the
//! sandbox; a mount names an existing volume at an absolute path, unique
//! in its container, and its `subPath` stays inside the volume.

use std::collections::HashSet;
use std::path::{Component, Path};

use super::{ConvertError, Result};
use crate::pb::agent as pb;
use crate::volume::{EmptyDirMedium, Volume, VolumeMount};

impl From<&Volume> for pb::Volume {
    fn from(v: &Volume) -> Self {
        use pb::volume::Medium;
        let medium = match &v.medium {
            EmptyDirMedium::BlockSerial { serial } => Medium::BlockSerial(serial.clone()),
            EmptyDirMedium::Directory => Medium::Directory(pb::Empty::default()),
            EmptyDirMedium::Memory => Medium::Memory(pb::Empty::default()),
        };
        pb::Volume {
            name: v.name.clone(),
            medium: Some(medium),
            size_limit: v.size_limit,
            ..Default::default()
        }
    }
}

impl From<&VolumeMount> for pb::VolumeMount {
    fn from(m: &VolumeMount) -> Self {
        pb::VolumeMount {
            name: m.name.clone(),
            mount_path: m.mount_path.to_string_lossy().into_owned(),
            read_only: m.read_only,
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
            ..Default::default()
        }
    }
}

/// Whether `name` is a lowercase RFC 1123 label: 1..=63 lowercase
/// alphanumerics and '-', alphanumeric at both ends (what Kubernetes wants
/// of container and volume names; it also keeps a name usable as a file
/// name).
pub fn is_dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Checks and converts the sandbox's volumes off the wire (`field` names
/// the list, e.g. `sandbox.volumes`).
pub(crate) fn volumes_from_pb(volumes: Vec<pb::Volume>, field: &str) -> Result<Vec<Volume>> {
    use pb::volume::Medium;
    let mut names = HashSet::new();
    volumes
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("{field}[{i}]");
            if v.name.is_empty() {
                return Err(ConvertError::required(format!("{at}.name")));
            }
            if !is_dns_label(&v.name) {
                return Err(ConvertError::invalid(
                    format!("{at}.name"),
                    format!("{:?}", v.name),
                    "a lowercase RFC 1123 label of at most 63 characters must consist of lower \
                     case alphanumeric characters or '-', and must start and end with an \
                     alphanumeric character",
                ));
            }
            if !names.insert(v.name.clone()) {
                return Err(ConvertError::duplicate(format!("{at}.name"), &v.name));
            }
            let medium = match v.medium {
                Some(Medium::BlockSerial(serial)) if serial.is_empty() => {
                    return Err(ConvertError::required(format!("{at}.blockSerial")))
                }
                Some(Medium::BlockSerial(serial)) => EmptyDirMedium::BlockSerial { serial },
                Some(Medium::Directory(_)) => EmptyDirMedium::Directory,
                Some(Medium::Memory(_)) => EmptyDirMedium::Memory,
                None => return Err(ConvertError::required(format!("{at}.medium"))),
            };
            Ok(Volume {
                name: v.name,
                medium,
                size_limit: v.size_limit,
            })
        })
        .collect()
}

/// Refuses a path with a NUL byte or a `..` component.
fn check_clean(path: &str, field: &str) -> Result<()> {
    if path.contains('\0') {
        return Err(ConvertError::invalid(
            field,
            format!("{path:?}"),
            "must not contain NUL",
        ));
    }
    if Path::new(path)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(ConvertError::invalid(
            field,
            format!("{path:?}"),
            "must not contain '..'",
        ));
    }
    Ok(())
}

/// Checks an absolute path without `..` (a mount path, the termination
/// message path).
pub(crate) fn check_absolute(path: &str, field: &str) -> Result<()> {
    if path.is_empty() {
        return Err(ConvertError::required(field));
    }
    if !path.starts_with('/') {
        return Err(ConvertError::invalid(
            field,
            format!("{path:?}"),
            "must be an absolute path",
        ));
    }
    check_clean(path, field)
}

/// Checks and converts a container's volume mounts off the wire: each
/// names one of `volumes` (`field` names the list, e.g.
/// `sandbox.containers[0].volumeMounts`).
pub(crate) fn mounts_from_pb(
    mounts: Vec<pb::VolumeMount>,
    volumes: &[Volume],
    field: &str,
) -> Result<Vec<VolumeMount>> {
    let mut paths = HashSet::new();
    mounts
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let at = format!("{field}[{i}]");
            if m.name.is_empty() {
                return Err(ConvertError::required(format!("{at}.name")));
            }
            if !volumes.iter().any(|v| v.name == m.name) {
                return Err(ConvertError::not_found(format!("{at}.name"), &m.name));
            }
            check_absolute(&m.mount_path, &format!("{at}.mountPath"))?;
            if !paths.insert(m.mount_path.clone()) {
                return Err(ConvertError::invalid(
                    format!("{at}.mountPath"),
                    format!("{:?}", m.mount_path),
                    "must be unique",
                ));
            }
            let sub_path = match m.sub_path.filter(|s| !s.is_empty()) {
                Some(sub) => {
                    let sub_field = format!("{at}.subPath");
                    if sub.starts_with('/') {
                        return Err(ConvertError::invalid(
                            sub_field,
                            format!("{sub:?}"),
                            "must be a relative path",
                        ));
                    }
                    check_clean(&sub, &sub_field)?;
                    Some(sub)
                }
                None => None,
            };
            Ok(VolumeMount {
                name: m.name,
                mount_path: m.mount_path.into(),
                read_only: m.read_only,
                sub_path,
            })
        })
        .collect()
}
