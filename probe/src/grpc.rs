//! The `grpc` probe (kubelet's `pkg/probe/grpc`): `grpc.health.v1.Health/Check`
//! over plain-text HTTP/2; `SERVING` is success. As kubelet (grpc-go with
//! `WithBlock`), connecting is retried until the timeout passes.

use std::time::Duration;

use tokio::time::{sleep, timeout_at, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::dial::DEFAULT_HOST;
use crate::{go_text, Outcome, USER_AGENT_PROBE};

/// The first pause between connection attempts; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Asks the health service on `port` about `service` (empty: the server).
pub(crate) async fn probe(port: u16, service: Option<&str>, timeout: Duration) -> Outcome {
    let addr = go_text::join_host_port(DEFAULT_HOST, port);
    let deadline = Instant::now() + timeout;
    let within = go_text::duration(timeout);
    let endpoint = match Endpoint::from_shared(format!("http://{addr}"))
        .and_then(|endpoint| endpoint.user_agent(USER_AGENT_PROBE))
    {
        Ok(endpoint) => endpoint,
        Err(err) => {
            return Outcome::Failure(format!(
                "error: failed to connect service at {addr:?}: {err}"
            ))
        }
    };
    let Ok(channel) = timeout_at(deadline, connect(&endpoint)).await else {
        return Outcome::Failure(format!(
            "timeout: failed to connect service {addr:?} within {within}: context deadline exceeded"
        ));
    };
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: service.unwrap_or_default().to_owned(),
    });
    request.set_timeout(deadline.saturating_duration_since(Instant::now()));
    let answer = timeout_at(deadline, HealthClient::new(channel).check(request)).await;
    let timed_out = || {
        Outcome::Failure(format!(
            "timeout: health rpc did not complete within {within}"
        ))
    };
    match answer {
        Err(_) => timed_out(),
        Ok(Err(status)) => match status.code() {
            Code::Unimplemented => Outcome::Failure(format!(
                "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                status.message()
            )),
            Code::DeadlineExceeded => timed_out(),
            code => Outcome::Failure(format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                code_name(code),
                status.message()
            )),
        },
        Ok(Ok(response)) => match ServingStatus::try_from(response.into_inner().status) {
            Ok(ServingStatus::Serving) => Outcome::Success,
            Ok(other) => Outcome::Failure(format!(
                "service unhealthy (responded with {:?})",
                other.as_str_name()
            )),
            Err(unknown) => Outcome::Failure(format!(
                "service unhealthy (responded with \"{}\")",
                unknown.0
            )),
        },
    }
}

/// Connects, retrying with growing pauses; the caller bounds it in time.
async fn connect(endpoint: &Endpoint) -> Channel {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// grpc-go's name of a status code (`codes.Code.String()`).
fn code_name(code: Code) -> String {
    match code {
        Code::Ok => "OK".to_owned(),
        Code::Cancelled => "Canceled".to_owned(),
        other => format!("{other:?}"),
    }
}
