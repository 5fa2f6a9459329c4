//! What one probe attempt or hook request came to (kubelet's
//! `probe.Result` with its output).

/// The result of one probe attempt, or of one `httpGet` hook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Success,
    /// The check passed with a remark kubelet records as a warning event
    /// (`ProbeWarning` for probes: a redirect to another host was not
    /// followed; `LifecycleHTTPFallback` for hooks: HTTPS fell back to HTTP).
    Warning(String),
    /// The check failed; the text is what kubelet puts after
    /// `<Kind> probe failed: `.
    Failure(String),
    /// The check could not be carried out (kubelet's probe error: the
    /// attempt is retried, then reported as `<Kind> probe errored: ` and not
    /// counted towards the thresholds).
    Errored(String),
}

impl Outcome {
    /// Whether the outcome counts as a success (`Success` or `Warning`).
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success | Outcome::Warning(_))
    }
}

/// What an [`crate::ExecRunner`] reports for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ran to its end.
    Exited {
        /// Its exit code (128 + signal number when a signal ended it).
        code: i32,
        /// Its stdout and stderr together (kubelet keeps at most 10 KiB).
        output: Vec<u8>,
    },
    /// The command was still running when the timeout passed (and was
    /// killed).
    TimedOut,
    /// The command could not be started; the text says why.
    CouldNotRun(String),
}
