//! Kubelet's probe and lifecycle-hook actions, run by the agent inside the
//! pod's network namespace (kubelet's `pkg/kubelet/prober` and
//! `pkg/probe/{exec,http,tcp,grpc}`).
//!
//! The agent starts one [`Prober`] per pod: a thread that first enters the
//! pod's network namespace, then serves every probe of the pod on a
//! single-threaded tokio runtime. [`Prober::watch`] starts the probe workers
//! of one container run, which report through a callback
//! ([`ProbeReport`]); [`Prober::hook_http_get`] runs an `httpGet`
//! lifecycle hook and [`Prober::probe_once`] one probe attempt.

mod action;
mod dial;
mod exec;
mod go_text;
mod grpc;
mod http;
mod http_client;
mod http_tls;
mod outcome;
mod prober;
mod report;
mod tcp;
mod threshold;
mod timing;
mod worker;

#[cfg(test)]
mod prober_tests;

pub use exec::ExecRunner;
pub use outcome::{ExecOutcome, Outcome};
pub use prober::Prober;
pub use report::{EventReason, ProbeEvent, ProbeKind, ProbeReport, ProbeResult};
pub use worker::{ReportFn, RunKey, RunProbes};

/// The `User-Agent` of probes, as kubelet 1.33 sends it.
pub const USER_AGENT_PROBE: &str = "kube-probe/1.33";
/// The `User-Agent` of `httpGet` lifecycle hooks, as kubelet 1.33 sends it.
pub const USER_AGENT_LIFECYCLE: &str = "kube-lifecycle/1.33";
