//! Running a container's lifecycle hook (`postStart`, `preStop`) the way
//! kubelet's `pkg/kubelet/lifecycle/handlers.go` does: `exec` in the
//! container, `httpGet` from the pod's network namespace (by the pod's
//! prober), `sleep`. A failure is kubelet's message, which becomes the
//! `FailedPostStartHook` / `FailedPreStopHook` event.

use std::time::Duration;

use podvm_proto::HookAction;

use super::probes::PodProbes;
use crate::container::Container;
use crate::exec::run::{run_in_container, MAX_TIMEOUT};

/// Go's `%v` of a string list: `[sh -c exit 1]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Runs `action` for `container` of the pod kubelet calls `pod`, for at
/// most `limit`; the error is kubelet's message.
pub fn run(
    container: &Container,
    action: &HookAction,
    limit: Option<Duration>,
    pod: &str,
    probes: &PodProbes,
) -> Result<(), String> {
    let name = container.name();
    match action {
        HookAction::Exec { command } => {
            let timeout = limit.unwrap_or(MAX_TIMEOUT).min(MAX_TIMEOUT);
            let failed = |error: String, output: &str| {
                format!(
                    "Exec lifecycle hook ({}) for Container {name:?} in Pod {pod:?} failed - error: {error}, message: {output:?}",
                    go_list(command)
                )
            };
            match run_in_container(container, command.clone(), timeout) {
                Ok(outcome) if outcome.exit_code == Some(0) => Ok(()),
                Ok(outcome) => {
                    let output = String::from_utf8_lossy(&outcome.output).into_owned();
                    let error = match outcome.exit_code {
                        _ if outcome.timed_out => {
                            format!("command '{}' timed out", command.join(" "))
                        }
                        Some(code) => format!(
                            "command '{}' exited with {code}: {output}",
                            command.join(" ")
                        ),
                        None => format!("command '{}' did not end", command.join(" ")),
                    };
                    Err(failed(error, &output))
                }
                Err(e) => Err(failed(e.to_string(), "")),
            }
        }
        HookAction::HttpGet(get) => {
            let timeout = limit.unwrap_or(MAX_TIMEOUT).min(MAX_TIMEOUT);
            probes.http_get(get, timeout).map_err(|error| {
                format!(
                    "HTTP lifecycle hook ({}) for Container {name:?} in Pod {pod:?} failed - error: {error}",
                    get.path
                )
            })
        }
        HookAction::Sleep { seconds } => {
            let wanted = Duration::from_secs(*seconds);
            std::thread::sleep(limit.map_or(wanted, |l| l.min(wanted)));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_lists() {
        let argv = ["sh", "-c", "exit 1"].map(String::from);
        assert_eq!(go_list(&argv), "[sh -c exit 1]");
    }
}
