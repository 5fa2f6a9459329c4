//! Semantic checks on a decoded Pod, mirroring the API server's validation
//! (`pkg/apis/core/validation`) for the fields podvm implements, with its
//! messages. The pod is checked as the API server sees it after defaulting:
//! a field left at zero takes its default rather than failing.

mod container;
mod probe;
mod volume;

use std::collections::HashSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;

use super::names::{dns1123_label_errors, dns1123_subdomain_errors, qualified_name_errors};
use super::FieldError;
use crate::sandbox::DEFAULT_GRACE_SECONDS;

/// What the container checks need to know about the pod.
struct PodContext<'a> {
    /// Names of the volumes that are valid (mounts may refer to them).
    volumes: HashSet<&'a str>,
    /// `terminationGracePeriodSeconds` after defaulting: the bound of a
    /// `sleep` hook.
    grace: i64,
}

pub fn validate(pod: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = &pod.metadata;
    match meta.name.as_deref() {
        None | Some("") => errs.push(FieldError::required("metadata.name", "")),
        Some(n) => push_each(&mut errs, "metadata.name", n, dns1123_subdomain_errors(n)),
    }
    if let Some(ns) = meta.namespace.as_deref() {
        push_each(
            &mut errs,
            "metadata.namespace",
            ns,
            dns1123_label_errors(ns),
        );
    }
    let Some(spec) = &pod.spec else {
        errs.push(FieldError::required("spec", ""));
        return errs;
    };
    let ctx = PodContext {
        volumes: volume::validate_volumes(spec.volumes.as_deref().unwrap_or_default(), &mut errs),
        grace: spec
            .termination_grace_period_seconds
            .unwrap_or(DEFAULT_GRACE_SECONDS as i64),
    };
    if spec.containers.is_empty() {
        errs.push(FieldError::required(
            "spec.containers",
            "at least one container",
        ));
    }
    container::validate_containers(&spec.containers, &ctx, &mut errs);
    container::validate_init_containers(
        spec.init_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        &ctx,
        &mut errs,
    );
    if let Some(p) = spec.restart_policy.as_deref() {
        if !["Always", "OnFailure", "Never"].contains(&p) {
            errs.push(FieldError::not_supported(
                "spec.restartPolicy",
                p,
                &["Always", "OnFailure", "Never"],
            ));
        }
    }
    if let Some(g) = spec.termination_grace_period_seconds {
        if g < 0 {
            errs.push(FieldError::invalid(
                "spec.terminationGracePeriodSeconds",
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(d) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&d) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                d,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        let t = &gate.condition_type;
        push_each(
            &mut errs,
            &format!("spec.readinessGates[{i}].conditionType"),
            t,
            qualified_name_errors(t),
        );
    }
    if let Some(h) = spec.hostname.as_deref() {
        push_each(&mut errs, "spec.hostname", h, dns1123_label_errors(h));
    }
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let path = format!("spec.hostAliases[{i}]");
        if alias.ip.parse::<IpAddr>().is_err() {
            errs.push(FieldError::invalid(
                format!("{path}.ip"),
                &alias.ip,
                "must be a valid IP address",
            ));
        }
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            push_each(
                &mut errs,
                &format!("{path}.hostnames[{j}]"),
                h,
                dns1123_subdomain_errors(h),
            );
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
    errs
}

/// One `Invalid value` error per message.
fn push_each(errs: &mut Vec<FieldError>, path: &str, value: &str, messages: Vec<String>) {
    errs.extend(messages.iter().map(|m| FieldError::invalid(path, value, m)));
}

fn check_id(errs: &mut Vec<FieldError>, path: &str, id: Option<i64>) {
    if let Some(id) = id {
        if !(0..=i64::from(i32::MAX)).contains(&id) {
            errs.push(FieldError::invalid(
                path,
                id,
                "must be between 0 and 2147483647, inclusive",
            ));
        }
    }
}
