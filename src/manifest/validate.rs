//! Semantic checks on a decoded Pod, mirroring the API server's validation
//! for the fields podvm implements.

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::names::{is_dns1123_label, is_dns1123_subdomain, is_env_var_name};
use super::FieldError;

/// `fieldRef.fieldPath` values podvm can resolve.
pub const SUPPORTED_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
];

pub fn validate(pod: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = &pod.metadata;
    match meta.name.as_deref() {
        None | Some("") => errs.push(FieldError::new("metadata.name", "Required value")),
        Some(n) if !is_dns1123_subdomain(n) => errs.push(FieldError::new(
            "metadata.name",
            format!("Invalid value {n:?}: must be a lowercase RFC 1123 subdomain"),
        )),
        _ => {}
    }
    if let Some(ns) = meta.namespace.as_deref() {
        if !is_dns1123_label(ns) {
            errs.push(FieldError::new(
                "metadata.namespace",
                format!("Invalid value {ns:?}: must be a lowercase RFC 1123 label"),
            ));
        }
    }
    let Some(spec) = &pod.spec else {
        errs.push(FieldError::new("spec", "Required value"));
        return errs;
    };
    if spec.containers.is_empty() {
        errs.push(FieldError::new(
            "spec.containers",
            "Required value: at least one container",
        ));
    }
    if let Some(p) = spec.restart_policy.as_deref() {
        if !["Always", "OnFailure", "Never"].contains(&p) {
            errs.push(FieldError::new(
                "spec.restartPolicy",
                format!("Unsupported value {p:?}: supported values: \"Always\", \"OnFailure\", \"Never\""),
            ));
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds {
        if g < 0 {
            errs.push(FieldError::new(
                "spec.terminationGracePeriodSeconds",
                format!("Invalid value {g}: must be greater than or equal to 0"),
            ));
        }
    }
    if let Some(h) = spec.hostname.as_deref() {
        if !is_dns1123_label(h) {
            errs.push(FieldError::new(
                "spec.hostname",
                format!("Invalid value {h:?}: must be a lowercase RFC 1123 label"),
            ));
        }
    }
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let path = format!("spec.hostAliases[{i}]");
        if alias.ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::new(
                format!("{path}.ip"),
                format!("Invalid value {:?}: must be a valid IP address", alias.ip),
            ));
        }
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            if !is_dns1123_subdomain(h) {
                errs.push(FieldError::new(
                    format!("{path}.hostnames[{j}]"),
                    format!("Invalid value {h:?}: must be a lowercase RFC 1123 subdomain"),
                ));
            }
        }
    }
    if let Some(sc) = &spec.security_context {
        check_id(&mut errs, "spec.securityContext.runAsUser", sc.run_as_user);
        check_id(
            &mut errs,
            "spec.securityContext.runAsGroup",
            sc.run_as_group,
        );
        for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
            check_id(
                &mut errs,
                &format!("spec.securityContext.supplementalGroups[{i}]"),
                Some(*g),
            );
        }
    }
    let mut names = HashSet::new();
    for (i, c) in spec.containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            errs.push(FieldError::new(
                format!("{path}.name"),
                format!("Duplicate value {:?}", c.name),
            ));
        }
        validate_container(c, &path, &mut errs);
    }
    errs
}

fn validate_container(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(FieldError::new(format!("{path}.name"), "Required value"));
    } else if !is_dns1123_label(&c.name) {
        errs.push(FieldError::new(
            format!("{path}.name"),
            format!(
                "Invalid value {:?}: must be a lowercase RFC 1123 label",
                c.name
            ),
        ));
    }
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::new(format!("{path}.image"), "Required value")),
        Some(img) if img.trim() != img => errs.push(FieldError::new(
            format!("{path}.image"),
            "Invalid value: must not have leading or trailing whitespace",
        )),
        _ => {}
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !["Always", "IfNotPresent", "Never"].contains(&p) {
            errs.push(FieldError::new(
                format!("{path}.imagePullPolicy"),
                format!("Unsupported value {p:?}: supported values: \"Always\", \"IfNotPresent\", \"Never\""),
            ));
        }
    }
    if let Some(wd) = c.working_dir.as_deref() {
        if !wd.is_empty() && !wd.starts_with('/') {
            errs.push(FieldError::new(
                format!("{path}.workingDir"),
                format!("Invalid value {wd:?}: must be an absolute path"),
            ));
        }
    }
    for (j, e) in c.env.iter().flatten().enumerate() {
        let epath = format!("{path}.env[{j}]");
        if !is_env_var_name(&e.name) {
            errs.push(FieldError::new(
                format!("{epath}.name"),
                format!("Invalid value {:?}: a valid environment variable name must consist of printable ASCII characters other than '='", e.name),
            ));
        }
        if let Some(from) = &e.value_from {
            if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::new(
                    format!("{epath}.valueFrom"),
                    "Invalid value: may not be specified when `value` is not empty",
                ));
            }
            match &from.field_ref {
                None => errs.push(FieldError::new(
                    format!("{epath}.valueFrom"),
                    "Invalid value: must specify fieldRef (the only source podvm supports)",
                )),
                Some(fr) if !SUPPORTED_FIELD_PATHS.contains(&fr.field_path.as_str()) => {
                    errs.push(FieldError::new(
                        format!("{epath}.valueFrom.fieldRef.fieldPath"),
                        format!(
                            "Unsupported value {:?}: supported values: {}",
                            fr.field_path,
                            SUPPORTED_FIELD_PATHS.join(", ")
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
    }
    for (j, p) in c.ports.iter().flatten().enumerate() {
        if !(1..=65535).contains(&p.container_port) {
            errs.push(FieldError::new(
                format!("{path}.ports[{j}].containerPort"),
                format!(
                    "Invalid value {}: must be between 1 and 65535, inclusive",
                    p.container_port
                ),
            ));
        }
    }
    if let Some(sc) = &c.security_context {
        check_id(
            errs,
            &format!("{path}.securityContext.runAsUser"),
            sc.run_as_user,
        );
        check_id(
            errs,
            &format!("{path}.securityContext.runAsGroup"),
            sc.run_as_group,
        );
    }
}

fn check_id(errs: &mut Vec<FieldError>, path: &str, id: Option<i64>) {
    if let Some(id) = id {
        if !(0..=i64::from(i32::MAX)).contains(&id) {
            errs.push(FieldError::new(
                path,
                format!("Invalid value {id}: must be between 0 and 2147483647, inclusive"),
            ));
        }
    }
}
