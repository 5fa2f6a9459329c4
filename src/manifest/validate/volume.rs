//! Volume checks (`ValidateVolumes`, `ValidateVolumeMounts`): volumes are
//! uniquely named `emptyDir`s of a medium podvm has and a valid size;
//! mounts name a valid volume, at a path used once, with a `subPath` that
//! stays inside the volume.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Volume, VolumeMount};

use super::push_each;
use crate::manifest::names::dns1123_label_errors;
use crate::manifest::quantity::{parse_bytes, QuantityError};
use crate::manifest::FieldError;

/// `emptyDir.medium` values podvm implements: disk and tmpfs.
pub const SUPPORTED_MEDIA: &[&str] = &["", "Memory"];

/// Checks `spec.volumes`; returns the names of the valid ones (a mount of
/// an invalid volume is then reported as not found, as the API server
/// does).
pub(super) fn validate_volumes<'a>(
    volumes: &'a [Volume],
    errs: &mut Vec<FieldError>,
) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let path = format!("spec.volumes[{i}]");
        let mut own = Vec::new();
        match &v.empty_dir {
            None => own.push(FieldError::required(&path, "must specify a volume type")),
            Some(ed) => {
                let medium = ed.medium.as_deref().unwrap_or_default();
                if !SUPPORTED_MEDIA.contains(&medium) {
                    own.push(FieldError::not_supported(
                        format!("{path}.emptyDir.medium"),
                        medium,
                        SUPPORTED_MEDIA,
                    ));
                }
                if let Some(q) = &ed.size_limit {
                    let field = format!("{path}.emptyDir.sizeLimit");
                    match parse_bytes(&q.0) {
                        Ok(_) => {}
                        Err(QuantityError::Negative) => own.push(FieldError::forbidden(
                            field,
                            "SizeLimit field must be a valid resource quantity",
                        )),
                        Err(e) => own.push(FieldError::invalid(field, &q.0, &e.to_string())),
                    }
                }
            }
        }
        let name_path = format!("{path}.name");
        if v.name.is_empty() {
            own.push(FieldError::required(&name_path, ""));
        } else {
            push_each(&mut own, &name_path, &v.name, dns1123_label_errors(&v.name));
        }
        if names.contains(v.name.as_str()) {
            own.push(FieldError::duplicate(&name_path, &v.name));
        }
        if own.is_empty() {
            names.insert(v.name.as_str());
        }
        errs.extend(own);
    }
    names
}

/// Checks one container's `volumeMounts` (`path` is
/// `spec.containers[i].volumeMounts`). A relative `mountPath` is taken
/// from the container's root, as kubelet does.
pub(super) fn validate_mounts(
    mounts: &[VolumeMount],
    volumes: &HashSet<&str>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points = HashSet::new();
    for (j, m) in mounts.iter().enumerate() {
        let mpath = format!("{path}[{j}]");
        if m.name.is_empty() {
            errs.push(FieldError::required(format!("{mpath}.name"), ""));
        }
        if !volumes.contains(m.name.as_str()) {
            errs.push(FieldError::not_found(format!("{mpath}.name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(format!("{mpath}.mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                format!("{mpath}.mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let field = format!("{mpath}.subPath");
            if sub.starts_with('/') {
                errs.push(FieldError::invalid(&field, sub, "must be a relative path"));
            }
            if sub.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&field, sub, "must not contain '..'"));
            }
        }
    }
}
