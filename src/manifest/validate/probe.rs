//! Probe and lifecycle-hook checks (`validateProbe`, `validateLifecycle`,
//! `validateHandler`): exactly one action; ports valid and, when named,
//! among the container's ports; timings not negative (zero takes the
//! default); `successThreshold` 1 for liveness and startup probes; a
//! `sleep` within the pod's grace period.

use k8s_openapi::api::core::v1::{
    Container, ExecAction, GRPCAction, HTTPGetAction, Lifecycle, LifecycleHandler, Probe,
    SleepAction, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::push_each;
use crate::manifest::names::{http_header_name_errors, port_name_errors};
use crate::manifest::FieldError;

/// Which of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// The field's name in a container.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Startup => "startupProbe",
        }
    }
}

/// The actions a probe or hook may name; exactly one must be set.
struct Handler<'a> {
    exec: Option<&'a ExecAction>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a TCPSocketAction>,
    grpc: Option<&'a GRPCAction>,
    sleep: Option<&'a SleepAction>,
}

pub(super) fn validate_probe(
    p: &Probe,
    kind: ProbeKind,
    path: &str,
    c: &Container,
    grace: i64,
    errs: &mut Vec<FieldError>,
) {
    let handler = Handler {
        exec: p.exec.as_ref(),
        http_get: p.http_get.as_ref(),
        tcp_socket: p.tcp_socket.as_ref(),
        grpc: p.grpc.as_ref(),
        sleep: None,
    };
    validate_handler(&handler, path, c, grace, errs);
    for (field, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        if let Some(v) = value.filter(|v| *v < 0) {
            errs.push(FieldError::invalid(
                format!("{path}.{field}"),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(g) = p.termination_grace_period_seconds.filter(|g| *g <= 0) {
        errs.push(FieldError::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            g,
            "must be greater than 0",
        ));
    }
    match kind {
        ProbeKind::Liveness | ProbeKind::Startup => {
            // Zero (unset) defaults to 1.
            let threshold = p.success_threshold.filter(|t| *t != 0).unwrap_or(1);
            if threshold != 1 {
                errs.push(FieldError::invalid(
                    format!("{path}.successThreshold"),
                    threshold,
                    "must be 1",
                ));
            }
        }
        ProbeKind::Readiness => {
            if let Some(g) = p.termination_grace_period_seconds {
                errs.push(FieldError::invalid(
                    format!("{path}.terminationGracePeriodSeconds"),
                    g,
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
}

pub(super) fn validate_lifecycle(
    l: &Lifecycle,
    path: &str,
    c: &Container,
    grace: i64,
    errs: &mut Vec<FieldError>,
) {
    for (field, hook) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
        if let Some(h) = hook {
            validate_handler(&hook_handler(h), &format!("{path}.{field}"), c, grace, errs);
        }
    }
}

fn hook_handler(h: &LifecycleHandler) -> Handler<'_> {
    Handler {
        exec: h.exec.as_ref(),
        http_get: h.http_get.as_ref(),
        tcp_socket: h.tcp_socket.as_ref(),
        grpc: None,
        sleep: h.sleep.as_ref(),
    }
}

/// `validateHandler`: the first action set is checked, every further one
/// is refused.
fn validate_handler(
    h: &Handler<'_>,
    path: &str,
    c: &Container,
    grace: i64,
    errs: &mut Vec<FieldError>,
) {
    let mut seen = false;
    let mut take = |field: &str, errs: &mut Vec<FieldError>| -> bool {
        if seen {
            errs.push(FieldError::forbidden(
                format!("{path}.{field}"),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            seen = true;
            true
        }
    };
    if let Some(e) = h.exec {
        if take("exec", errs) && e.command.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(format!("{path}.exec.command"), ""));
        }
    }
    if let Some(g) = h.http_get {
        if take("httpGet", errs) {
            validate_http_get(g, &format!("{path}.httpGet"), c, errs);
        }
    }
    if let Some(t) = h.tcp_socket {
        if take("tcpSocket", errs) {
            validate_port(&t.port, &format!("{path}.tcpSocket.port"), c, errs);
        }
    }
    if let Some(g) = h.grpc {
        if take("grpc", errs) && !(1..=65535).contains(&g.port) {
            errs.push(FieldError::invalid(
                format!("{path}.grpc.port"),
                g.port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
    if let Some(s) = h.sleep {
        // PodLifecycleSleepActionAllowZero (on by default since 1.33).
        if take("sleep", errs) && (s.seconds < 0 || s.seconds > grace) {
            errs.push(FieldError::invalid(
                format!("{path}.sleep"),
                s.seconds,
                &format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            ));
        }
    }
    if !seen {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn validate_http_get(g: &HTTPGetAction, path: &str, c: &Container, errs: &mut Vec<FieldError>) {
    validate_port(&g.port, &format!("{path}.port"), c, errs);
    if let Some(s) = g.scheme.as_deref().filter(|s| !s.is_empty()) {
        if !["HTTP", "HTTPS"].contains(&s) {
            errs.push(FieldError::not_supported(
                format!("{path}.scheme"),
                s,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    for (i, header) in g.http_headers.iter().flatten().enumerate() {
        push_each(
            errs,
            &format!("{path}.httpHeaders[{i}].name"),
            &header.name,
            http_header_name_errors(&header.name),
        );
    }
}

/// A port number, or the name of one of the container's ports (podvm
/// resolves names when the pod is created, so one that names no port is
/// refused now rather than failing every probe later).
fn validate_port(port: &IntOrString, path: &str, c: &Container, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            if !(1..=65535).contains(n) {
                errs.push(FieldError::invalid(
                    path,
                    n,
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
        IntOrString::String(name) => {
            let msgs = port_name_errors(name);
            if !msgs.is_empty() {
                push_each(errs, path, name, msgs);
            } else if named_port(c, name).is_none() {
                errs.push(FieldError::new(
                    path,
                    format!(
                        "Not found: {name:?}: must be the name of one of the container's ports"
                    ),
                ));
            }
        }
    }
}

/// The number of the container's port called `name`.
fn named_port(c: &Container, name: &str) -> Option<i32> {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
}
