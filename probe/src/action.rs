//! Running one probe action, whatever its kind, with kubelet's retries of
//! attempts that could not be carried out.

use std::sync::Arc;
use std::time::Duration;

use podvm_proto::lifecycle::ProbeAction;

use crate::{exec, grpc, http, tcp, ExecRunner, Outcome};

/// Kubelet's `maxProbeRetries`: tries of an attempt that errored.
const MAX_TRIES: u32 = 3;

/// Runs `action` once, bounded by `timeout`.
pub(crate) async fn run(
    action: &ProbeAction,
    timeout: Duration,
    runner: &Arc<dyn ExecRunner>,
) -> Outcome {
    match action {
        ProbeAction::Exec { command } => exec::probe(runner.clone(), command, timeout).await,
        ProbeAction::HttpGet(get) => http::probe(get, timeout).await,
        ProbeAction::TcpSocket { host, port } => tcp::probe(host.as_deref(), *port, timeout).await,
        ProbeAction::Grpc { port, service } => {
            grpc::probe(*port, service.as_deref(), timeout).await
        }
    }
}

/// Runs `action`, trying again at once while it errors (3 tries in all).
pub(crate) async fn run_with_retries(
    action: &ProbeAction,
    timeout: Duration,
    runner: &Arc<dyn ExecRunner>,
) -> Outcome {
    let mut outcome = run(action, timeout, runner).await;
    for _ in 1..MAX_TRIES {
        if !matches!(outcome, Outcome::Errored(_)) {
            break;
        }
        outcome = run(action, timeout, runner).await;
    }
    outcome
}
