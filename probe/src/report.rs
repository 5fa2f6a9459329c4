//! What the prober tells the agent about a run's probes, and the events
//! kubelet records for it.

use std::fmt;

/// Which of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeKind::Startup => "Startup",
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
        })
    }
}

/// A probe's thresholded result (kubelet's `results.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
}

/// One piece of news about a run's probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeReport {
    /// An attempt failed (sent for every failed attempt).
    Failed { kind: ProbeKind, message: String },
    /// An attempt succeeded with a warning (sent for every such attempt).
    Warning { kind: ProbeKind, message: String },
    /// An attempt could not be carried out; it does not count towards the
    /// thresholds.
    Errored { kind: ProbeKind, message: String },
    /// The thresholded result changed. Readiness starts as `Failure` (not
    /// reported); liveness and startup start unknown, so their first
    /// thresholded result is always reported.
    Result {
        kind: ProbeKind,
        result: ProbeResult,
    },
}

/// The reason of an event kubelet records for a probe attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventReason {
    /// `Unhealthy` (type Warning): a failed or errored attempt.
    Unhealthy,
    /// `ProbeWarning` (type Warning): an attempt that passed with a warning.
    ProbeWarning,
}

impl EventReason {
    /// The reason as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::Unhealthy => "Unhealthy",
            EventReason::ProbeWarning => "ProbeWarning",
        }
    }
}

/// An event to record for a report: reason and message, as kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    pub reason: EventReason,
    pub message: String,
}

impl ProbeReport {
    /// The event kubelet records for this report, if any: e.g.
    /// `Unhealthy`, `Readiness probe failed: HTTP probe failed with statuscode: 503`.
    pub fn event(&self) -> Option<ProbeEvent> {
        let (reason, message) = match self {
            ProbeReport::Failed { kind, message } => (
                EventReason::Unhealthy,
                format!("{kind} probe failed: {message}"),
            ),
            ProbeReport::Errored { kind, message } => (
                EventReason::Unhealthy,
                format!("{kind} probe errored: {message}"),
            ),
            ProbeReport::Warning { kind, message } => (
                EventReason::ProbeWarning,
                format!("{kind} probe warning: {message}"),
            ),
            ProbeReport::Result { .. } => return None,
        };
        Some(ProbeEvent { reason, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_like_kubelet_s() {
        let failed = ProbeReport::Failed {
            kind: ProbeKind::Readiness,
            message: "HTTP probe failed with statuscode: 503".to_owned(),
        };
        let event = failed.event().unwrap();
        assert_eq!(event.reason.as_str(), "Unhealthy");
        assert_eq!(
            event.message,
            "Readiness probe failed: HTTP probe failed with statuscode: 503"
        );
        let warning = ProbeReport::Warning {
            kind: ProbeKind::Liveness,
            message: "Probe terminated redirects, Response body: ".to_owned(),
        };
        let event = warning.event().unwrap();
        assert_eq!(event.reason, EventReason::ProbeWarning);
        assert_eq!(
            event.message,
            "Liveness probe warning: Probe terminated redirects, Response body: "
        );
        let errored = ProbeReport::Errored {
            kind: ProbeKind::Startup,
            message: "no such container".to_owned(),
        };
        assert_eq!(
            errored.event().unwrap().message,
            "Startup probe errored: no such container"
        );
        let result = ProbeReport::Result {
            kind: ProbeKind::Startup,
            result: ProbeResult::Success,
        };
        assert_eq!(result.event(), None);
    }
}
