//! Kubelet's thresholds (`worker.doProbe`): `successThreshold` consecutive
//! successes or `failureThreshold` consecutive failures set the probe's
//! result; only a change of that result is news.

use crate::{ProbeKind, ProbeResult};

/// The counting state of one probe worker.
#[derive(Debug, Clone)]
pub(crate) struct Threshold {
    success_threshold: u32,
    failure_threshold: u32,
    /// The last attempt's result and how many in a row had it.
    last: Option<ProbeResult>,
    streak: u32,
    /// The thresholded result: readiness starts as `Failure`, liveness and
    /// startup start unknown.
    current: Option<ProbeResult>,
}

impl Threshold {
    /// A fresh count for a probe of `kind` (thresholds below 1 count as 1).
    pub(crate) fn new(kind: ProbeKind, success_threshold: u32, failure_threshold: u32) -> Self {
        Threshold {
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            last: None,
            streak: 0,
            current: match kind {
                ProbeKind::Readiness => Some(ProbeResult::Failure),
                ProbeKind::Liveness | ProbeKind::Startup => None,
            },
        }
    }

    /// Counts one attempt; returns the new thresholded result if it changed.
    pub(crate) fn observe(&mut self, result: ProbeResult) -> Option<ProbeResult> {
        if self.last == Some(result) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last = Some(result);
            self.streak = 1;
        }
        let needed = match result {
            ProbeResult::Success => self.success_threshold,
            ProbeResult::Failure => self.failure_threshold,
        };
        if self.streak < needed || self.current == Some(result) {
            return None;
        }
        self.current = Some(result);
        Some(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProbeResult::{Failure as F, Success as S};

    /// The changes reported for a sequence of attempts.
    fn changes(
        kind: ProbeKind,
        success: u32,
        failure: u32,
        attempts: &[ProbeResult],
    ) -> Vec<Option<ProbeResult>> {
        let mut threshold = Threshold::new(kind, success, failure);
        attempts
            .iter()
            .map(|attempt| threshold.observe(*attempt))
            .collect()
    }

    #[test]
    fn readiness_starts_failed_and_reports_first_success() {
        assert_eq!(
            changes(ProbeKind::Readiness, 1, 3, &[F, F, F, F, S, S]),
            [None, None, None, None, Some(S), None]
        );
    }

    #[test]
    fn success_threshold_needs_a_streak() {
        assert_eq!(
            changes(ProbeKind::Readiness, 2, 1, &[S, F, S, S, S, F]),
            [None, None, None, Some(S), None, Some(F)]
        );
    }

    #[test]
    fn failure_threshold_needs_a_streak() {
        assert_eq!(
            changes(ProbeKind::Liveness, 1, 3, &[S, F, F, S, F, F, F, F]),
            [Some(S), None, None, None, None, None, Some(F), None]
        );
    }

    #[test]
    fn startup_reports_its_first_result_either_way() {
        assert_eq!(changes(ProbeKind::Startup, 1, 2, &[F, F]), [None, Some(F)]);
        assert_eq!(changes(ProbeKind::Startup, 1, 2, &[F, S]), [None, Some(S)]);
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        assert_eq!(changes(ProbeKind::Liveness, 0, 0, &[F]), [Some(F)]);
    }
}
