//! Container checks: those common to app and init containers
//! (`validateContainerCommon`), and those of each kind — probes and hooks
//! on app containers and native sidecars, `restartPolicy` only on init
//! containers.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Container;

use super::probe::{validate_lifecycle, validate_probe, ProbeKind};
use super::volume::validate_mounts;
use super::{check_id, push_each, PodContext};
use crate::manifest::field_path::{self, FieldPath, FieldPathError};
use crate::manifest::names::{dns1123_label_errors, is_env_var_name, port_name_errors};
use crate::manifest::FieldError;

/// Longest `terminationMessagePath` (PATH_MAX).
const MAX_TERMINATION_MESSAGE_PATH: usize = 4096;

const INIT_ONLY: &str = "may not be set for init containers without restartPolicy=Always";

/// `spec.containers`: names unique among them; probes and hooks checked;
/// no `restartPolicy`.
pub(super) fn validate_containers(
    containers: &[Container],
    ctx: &PodContext<'_>,
    errs: &mut Vec<FieldError>,
) {
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("spec.containers[{i}]");
        validate_common(c, &path, ctx, errs);
        if !c.name.is_empty() && !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), &c.name));
        }
        validate_probes_and_hooks(c, &path, ctx, errs);
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
}

/// `spec.initContainers`: names unique across init and app containers;
/// `restartPolicy` only `Always` (a native sidecar); probes and hooks only
/// on sidecars.
pub(super) fn validate_init_containers(
    init: &[Container],
    app: &[Container],
    ctx: &PodContext<'_>,
    errs: &mut Vec<FieldError>,
) {
    let mut names: HashSet<&str> = app.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in init.iter().enumerate() {
        let path = format!("spec.initContainers[{i}]");
        validate_common(c, &path, ctx, errs);
        let sidecar = match c.restart_policy.as_deref() {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(FieldError::not_supported(
                    format!("{path}.restartPolicy"),
                    other,
                    &["Always"],
                ));
                false
            }
        };
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        if sidecar {
            validate_probes_and_hooks(c, &path, ctx, errs);
            continue;
        }
        let set = [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ];
        for (field, _) in set.iter().filter(|(_, is_set)| *is_set) {
            errs.push(FieldError::forbidden(format!("{path}.{field}"), INIT_ONLY));
        }
    }
}

fn validate_probes_and_hooks(
    c: &Container,
    path: &str,
    ctx: &PodContext<'_>,
    errs: &mut Vec<FieldError>,
) {
    if let Some(l) = &c.lifecycle {
        validate_lifecycle(l, &format!("{path}.lifecycle"), c, ctx.grace, errs);
    }
    for (kind, probe) in [
        (ProbeKind::Liveness, &c.liveness_probe),
        (ProbeKind::Readiness, &c.readiness_probe),
        (ProbeKind::Startup, &c.startup_probe),
    ] {
        if let Some(p) = probe {
            let ppath = format!("{path}.{}", kind.field());
            validate_probe(p, kind, &ppath, c, ctx.grace, errs);
        }
    }
}

/// `validateContainerCommon`: what every container must satisfy.
fn validate_common(c: &Container, path: &str, ctx: &PodContext<'_>, errs: &mut Vec<FieldError>) {
    if c.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        push_each(
            errs,
            &format!("{path}.name"),
            &c.name,
            dns1123_label_errors(&c.name),
        );
    }
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::required(format!("{path}.image"), "")),
        Some(img) if img.trim() != img => errs.push(FieldError::invalid(
            format!("{path}.image"),
            img,
            "must not have leading or trailing whitespace",
        )),
        _ => {}
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !["Always", "IfNotPresent", "Never"].contains(&p) {
            errs.push(FieldError::not_supported(
                format!("{path}.imagePullPolicy"),
                p,
                &["Always", "IfNotPresent", "Never"],
            ));
        }
    }
    if let Some(wd) = c.working_dir.as_deref() {
        if !wd.is_empty() && !wd.starts_with('/') {
            errs.push(FieldError::invalid(
                format!("{path}.workingDir"),
                wd,
                "must be an absolute path",
            ));
        }
    }
    validate_termination_message(c, path, errs);
    validate_env(c, path, errs);
    validate_ports(c, path, errs);
    validate_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        &ctx.volumes,
        &format!("{path}.volumeMounts"),
        errs,
    );
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

/// `terminationMessagePolicy` is `File` or `FallbackToLogsOnError`; the
/// path (empty: the default) is absolute and fits PATH_MAX.
fn validate_termination_message(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(p) = c.termination_message_policy.as_deref() {
        if !p.is_empty() && !["File", "FallbackToLogsOnError"].contains(&p) {
            errs.push(FieldError::not_supported(
                format!("{path}.terminationMessagePolicy"),
                p,
                &["File", "FallbackToLogsOnError"],
            ));
        }
    }
    if let Some(p) = c.termination_message_path.as_deref() {
        let field = format!("{path}.terminationMessagePath");
        if p.len() > MAX_TERMINATION_MESSAGE_PATH {
            errs.push(FieldError::invalid(
                field,
                p,
                "must be no more than 4096 characters",
            ));
        } else if !p.is_empty() && !p.starts_with('/') {
            errs.push(FieldError::invalid(field, p, "must be an absolute path"));
        }
    }
}

fn validate_env(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    for (j, e) in c.env.iter().flatten().enumerate() {
        let epath = format!("{path}.env[{j}]");
        if !is_env_var_name(&e.name) {
            errs.push(FieldError::invalid(
                format!("{epath}.name"),
                &e.name,
                "a valid environment variable name must consist of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = &e.value_from else { continue };
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            errs.push(FieldError::invalid(
                format!("{epath}.valueFrom"),
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        match &from.field_ref {
            None => errs.push(FieldError::required(
                format!("{epath}.valueFrom"),
                "must specify fieldRef (the only source podvm supports)",
            )),
            Some(fr) => {
                let fpath = format!("{epath}.valueFrom.fieldRef.fieldPath");
                match FieldPath::parse(&fr.field_path) {
                    Ok(_) => {}
                    Err(FieldPathError::Unsupported) => errs.push(FieldError::not_supported(
                        fpath,
                        &fr.field_path,
                        field_path::SUPPORTED,
                    )),
                    Err(FieldPathError::NeedsNetwork) => errs.push(FieldError::invalid(
                        fpath,
                        &fr.field_path,
                        "not supported by podvm until pods have a network (the pod has no IP yet)",
                    )),
                    Err(FieldPathError::BadKey(why)) => {
                        errs.push(FieldError::invalid(fpath, &fr.field_path, &why))
                    }
                }
            }
        }
    }
}

/// `validateContainerPorts`: numbers in range, names valid and unique (a
/// probe or hook may refer to a port by its name).
fn validate_ports(c: &Container, path: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (j, p) in c.ports.iter().flatten().enumerate() {
        let ppath = format!("{path}.ports[{j}]");
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                push_each(errs, &format!("{ppath}.name"), name, msgs);
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{ppath}.name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(format!("{ppath}.containerPort"), ""));
        } else if !(1..=65535).contains(&p.container_port) {
            errs.push(FieldError::invalid(
                format!("{ppath}.containerPort"),
                p.container_port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
}
