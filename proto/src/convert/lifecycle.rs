//! [`Probe`], [`Lifecycle`] and [`TerminationMessagePolicy`] ↔ their
//! protobuf messages (protocol 2.3), with the API server's checks on what
//! comes off the wire: periods and thresholds at least 1, ports in
//! 1..=65535, `httpGet` paths starting with `/`, non-empty exec commands.

use protobuf::{EnumOrUnknown, MessageField};

use super::volume::check_absolute;
use super::{ConvertError, Result};
use crate::lifecycle::{
    HookAction, HttpGet, HttpScheme, Lifecycle, Probe, ProbeAction, TerminationMessagePolicy,
};
use crate::pb::agent as pb;

/// Which of a container's probes is converted: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    /// The probe's field name in a container.
    pub(crate) fn field(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startupProbe",
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
        }
    }
}

fn exec_to_pb(command: &[String]) -> pb::ExecAction {
    pb::ExecAction {
        command: command.to_vec(),
        ..Default::default()
    }
}

impl From<&HttpGet> for pb::HttpGet {
    fn from(h: &HttpGet) -> Self {
        pb::HttpGet {
            host: h.host.clone(),
            port: u32::from(h.port),
            path: h.path.clone(),
            scheme: EnumOrUnknown::new(match h.scheme {
                HttpScheme::Http => pb::HttpScheme::HTTP_SCHEME_HTTP,
                HttpScheme::Https => pb::HttpScheme::HTTP_SCHEME_HTTPS,
            }),
            headers: h
                .headers
                .iter()
                .map(|(name, value)| pb::HttpHeader {
                    name: name.clone(),
                    value: value.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

impl From<&Probe> for pb::Probe {
    fn from(p: &Probe) -> Self {
        use pb::probe::Action;
        let action = match &p.action {
            ProbeAction::Exec { command } => Action::Exec(exec_to_pb(command)),
            ProbeAction::HttpGet(h) => Action::HttpGet(pb::HttpGet::from(h)),
            ProbeAction::TcpSocket { host, port } => Action::TcpSocket(pb::TcpSocketAction {
                host: host.clone(),
                port: u32::from(*port),
                ..Default::default()
            }),
            ProbeAction::Grpc { port, service } => Action::Grpc(pb::GrpcAction {
                port: u32::from(*port),
                service: service.clone(),
                ..Default::default()
            }),
        };
        pb::Probe {
            action: Some(action),
            initial_delay_seconds: p.initial_delay_seconds,
            period_seconds: p.period_seconds,
            timeout_seconds: p.timeout_seconds,
            success_threshold: p.success_threshold,
            failure_threshold: p.failure_threshold,
            termination_grace_period_seconds: p.termination_grace_period_seconds,
            ..Default::default()
        }
    }
}

impl From<&HookAction> for pb::HookAction {
    fn from(h: &HookAction) -> Self {
        use pb::hook_action::Action;
        let action = match h {
            HookAction::Exec { command } => Action::Exec(exec_to_pb(command)),
            HookAction::HttpGet(h) => Action::HttpGet(pb::HttpGet::from(h)),
            HookAction::Sleep { seconds } => Action::Sleep(pb::SleepAction {
                seconds: *seconds,
                ..Default::default()
            }),
        };
        pb::HookAction {
            action: Some(action),
            ..Default::default()
        }
    }
}

/// A container's lifecycle on the wire (unset when it has no hook).
pub(crate) fn lifecycle_to_pb(l: &Lifecycle) -> MessageField<pb::Lifecycle> {
    if l.post_start.is_none() && l.pre_stop.is_none() {
        return MessageField::none();
    }
    MessageField::some(pb::Lifecycle {
        post_start: l.post_start.as_ref().map(pb::HookAction::from).into(),
        pre_stop: l.pre_stop.as_ref().map(pb::HookAction::from).into(),
        ..Default::default()
    })
}

/// A termination message policy on the wire.
pub(crate) fn policy_to_pb(
    p: TerminationMessagePolicy,
) -> EnumOrUnknown<pb::TerminationMessagePolicy> {
    EnumOrUnknown::new(match p {
        TerminationMessagePolicy::File => {
            pb::TerminationMessagePolicy::TERMINATION_MESSAGE_POLICY_FILE
        }
        TerminationMessagePolicy::FallbackToLogsOnError => {
            pb::TerminationMessagePolicy::TERMINATION_MESSAGE_POLICY_FALLBACK_TO_LOGS_ON_ERROR
        }
    })
}

/// A termination message policy off the wire; unset (an older host) is
/// `File`, Kubernetes' default.
pub(crate) fn policy_from_pb(
    p: EnumOrUnknown<pb::TerminationMessagePolicy>,
    field: &str,
) -> Result<TerminationMessagePolicy> {
    use pb::TerminationMessagePolicy as P;
    match p.enum_value() {
        Ok(P::TERMINATION_MESSAGE_POLICY_UNSPECIFIED | P::TERMINATION_MESSAGE_POLICY_FILE) => {
            Ok(TerminationMessagePolicy::File)
        }
        Ok(P::TERMINATION_MESSAGE_POLICY_FALLBACK_TO_LOGS_ON_ERROR) => {
            Ok(TerminationMessagePolicy::FallbackToLogsOnError)
        }
        Err(v) => Err(ConvertError::unknown_enum(field, v)),
    }
}

/// A port number off the wire: 1..=65535.
fn port_from_pb(port: u32, field: &str) -> Result<u16> {
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConvertError::invalid(
            field,
            port,
            "must be between 1 and 65535, inclusive",
        )),
    }
}

/// An optional host name: empty means unset (the pod's own address).
fn host_from_pb(host: Option<String>, field: &str) -> Result<Option<String>> {
    match host {
        Some(h) if h.is_empty() => Ok(None),
        Some(h)
            if h.chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '/') =>
        {
            Err(ConvertError::invalid(
                field,
                format!("{h:?}"),
                "must be a host name or an IP address",
            ))
        }
        h => Ok(h),
    }
}

fn exec_from_pb(e: pb::ExecAction, field: &str) -> Result<Vec<String>> {
    if e.command.is_empty() {
        return Err(ConvertError::required(format!("{field}.exec.command")));
    }
    Ok(e.command)
}

/// An HTTP header name as the API server accepts it.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn http_get_from_pb(h: pb::HttpGet, field: &str) -> Result<HttpGet> {
    let field = format!("{field}.httpGet");
    let path = if h.path.is_empty() {
        "/".to_string()
    } else if !h.path.starts_with('/') {
        return Err(ConvertError::invalid(
            format!("{field}.path"),
            format!("{:?}", h.path),
            "must start with '/'",
        ));
    } else if h.path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConvertError::invalid(
            format!("{field}.path"),
            format!("{:?}", h.path),
            "must not contain whitespace or control characters",
        ));
    } else {
        h.path
    };
    let scheme = match h.scheme.enum_value() {
        Ok(pb::HttpScheme::HTTP_SCHEME_HTTP) => HttpScheme::Http,
        Ok(pb::HttpScheme::HTTP_SCHEME_HTTPS) => HttpScheme::Https,
        Ok(pb::HttpScheme::HTTP_SCHEME_UNSPECIFIED) => {
            return Err(ConvertError::required(format!("{field}.scheme")))
        }
        Err(v) => return Err(ConvertError::unknown_enum(format!("{field}.scheme"), v)),
    };
    let headers = h
        .headers
        .into_iter()
        .enumerate()
        .map(|(i, hd)| {
            let at = format!("{field}.httpHeaders[{i}]");
            if !is_header_name(&hd.name) {
                return Err(ConvertError::invalid(
                    format!("{at}.name"),
                    format!("{:?}", hd.name),
                    "a valid HTTP header must consist of alphanumeric characters or '-'",
                ));
            }
            if hd.value.chars().any(|c| c.is_control() && c != '\t') {
                return Err(ConvertError::invalid(
                    format!("{at}.value"),
                    format!("{:?}", hd.value),
                    "must not contain control characters",
                ));
            }
            Ok((hd.name, hd.value))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HttpGet {
        host: host_from_pb(h.host, &format!("{field}.host"))?,
        port: port_from_pb(h.port, &format!("{field}.port"))?,
        path,
        scheme,
        headers,
    })
}

/// At least 1, as the API server wants periods and thresholds.
fn at_least_one(value: u32, field: String) -> Result<u32> {
    if value == 0 {
        return Err(ConvertError::invalid(
            field,
            value,
            "must be greater than or equal to 1",
        ));
    }
    Ok(value)
}

/// Checks and converts a probe off the wire (`field` names it, e.g.
/// `sandbox.containers[0].livenessProbe`).
pub(crate) fn probe_from_pb(p: pb::Probe, kind: ProbeKind, field: &str) -> Result<Probe> {
    use pb::probe::Action;
    let action = match p.action {
        Some(Action::Exec(e)) => ProbeAction::Exec {
            command: exec_from_pb(e, field)?,
        },
        Some(Action::HttpGet(h)) => ProbeAction::HttpGet(http_get_from_pb(h, field)?),
        Some(Action::TcpSocket(t)) => ProbeAction::TcpSocket {
            host: host_from_pb(t.host, &format!("{field}.tcpSocket.host"))?,
            port: port_from_pb(t.port, &format!("{field}.tcpSocket.port"))?,
        },
        Some(Action::Grpc(g)) => ProbeAction::Grpc {
            port: port_from_pb(g.port, &format!("{field}.grpc.port"))?,
            service: g.service,
        },
        None => {
            return Err(ConvertError::new(
                field,
                "Required value: must specify a handler type",
            ))
        }
    };
    let success_threshold = at_least_one(p.success_threshold, format!("{field}.successThreshold"))?;
    if kind != ProbeKind::Readiness && success_threshold != 1 {
        return Err(ConvertError::invalid(
            format!("{field}.successThreshold"),
            success_threshold,
            "must be 1",
        ));
    }
    let termination_grace_period_seconds = match p.termination_grace_period_seconds {
        Some(s) if kind == ProbeKind::Readiness => {
            return Err(ConvertError::invalid(
                format!("{field}.terminationGracePeriodSeconds"),
                s,
                "must not be set for readinessProbes",
            ))
        }
        Some(0) => {
            return Err(ConvertError::invalid(
                format!("{field}.terminationGracePeriodSeconds"),
                0,
                "must be greater than 0",
            ))
        }
        s => s,
    };
    Ok(Probe {
        action,
        initial_delay_seconds: p.initial_delay_seconds,
        period_seconds: at_least_one(p.period_seconds, format!("{field}.periodSeconds"))?,
        timeout_seconds: at_least_one(p.timeout_seconds, format!("{field}.timeoutSeconds"))?,
        success_threshold,
        failure_threshold: at_least_one(p.failure_threshold, format!("{field}.failureThreshold"))?,
        termination_grace_period_seconds,
    })
}

fn hook_from_pb(h: pb::HookAction, grace_period: u64, field: &str) -> Result<HookAction> {
    use pb::hook_action::Action;
    Ok(match h.action {
        Some(Action::Exec(e)) => HookAction::Exec {
            command: exec_from_pb(e, field)?,
        },
        Some(Action::HttpGet(h)) => HookAction::HttpGet(http_get_from_pb(h, field)?),
        Some(Action::Sleep(s)) => {
            if s.seconds > grace_period {
                return Err(ConvertError::invalid(
                    format!("{field}.sleep.seconds"),
                    s.seconds,
                    &format!(
                        "must be non-negative and less than terminationGracePeriodSeconds ({grace_period})"
                    ),
                ));
            }
            HookAction::Sleep { seconds: s.seconds }
        }
        None => {
            return Err(ConvertError::new(
                field,
                "Required value: must specify a handler type",
            ))
        }
    })
}

/// Checks and converts a container's lifecycle off the wire; a sleep may
/// not outlast the pod's `grace_period` (seconds).
pub(crate) fn lifecycle_from_pb(
    l: Option<pb::Lifecycle>,
    grace_period: u64,
    field: &str,
) -> Result<Lifecycle> {
    let Some(l) = l else {
        return Ok(Lifecycle::default());
    };
    Ok(Lifecycle {
        post_start: l
            .post_start
            .into_option()
            .map(|h| hook_from_pb(h, grace_period, &format!("{field}.postStart")))
            .transpose()?,
        pre_stop: l
            .pre_stop
            .into_option()
            .map(|h| hook_from_pb(h, grace_period, &format!("{field}.preStop")))
            .transpose()?,
    })
}

/// The termination message path off the wire: unset (an older host) is
/// Kubernetes' default, otherwise it must be absolute.
pub(crate) fn termination_path_from_pb(path: Option<String>, field: &str) -> Result<String> {
    match path {
        None => Ok(crate::lifecycle::DEFAULT_TERMINATION_MESSAGE_PATH.to_string()),
        Some(p) => {
            check_absolute(&p, field)?;
            Ok(p)
        }
    }
}
