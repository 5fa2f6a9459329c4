//! [`SandboxStatus`] ↔ `pb::agent::SandboxStatus`.

use protobuf::MessageField;

use super::{ConvertError, Result};
use crate::pb::agent as pb;
use crate::status::{ContainerState, ContainerStatus, SandboxStatus};

impl From<&SandboxStatus> for pb::SandboxStatus {
    fn from(s: &SandboxStatus) -> Self {
        pb::SandboxStatus {
            sandbox_ready: s.sandbox_ready,
            started_at: s.started_at.clone(),
            containers: s.containers.iter().map(pb::ContainerStatus::from).collect(),
            agent_rss_kib: s.agent_rss_kib,
            ..Default::default()
        }
    }
}

impl From<&ContainerStatus> for pb::ContainerStatus {
    fn from(c: &ContainerStatus) -> Self {
        pb::ContainerStatus {
            name: c.name.clone(),
            container_id: c.container_id.clone(),
            image: c.image.clone(),
            image_id: c.image_id.clone(),
            state: MessageField::some(pb::ContainerState::from(&c.state)),
            last_state: c.last_state.as_ref().map(pb::ContainerState::from).into(),
            restart_count: c.restart_count,
            ..Default::default()
        }
    }
}

impl From<&ContainerState> for pb::ContainerState {
    fn from(s: &ContainerState) -> Self {
        use pb::container_state::State;
        let state = match s {
            ContainerState::Waiting { reason, message } => State::Waiting(pb::StateWaiting {
                reason: reason.clone(),
                message: message.clone(),
                ..Default::default()
            }),
            ContainerState::Running { started_at } => State::Running(pb::StateRunning {
                started_at: started_at.clone(),
                ..Default::default()
            }),
            ContainerState::Terminated {
                exit_code,
                signal,
                reason,
                message,
                started_at,
                finished_at,
            } => State::Terminated(pb::StateTerminated {
                exit_code: *exit_code,
                signal: *signal,
                reason: reason.clone(),
                message: message.clone(),
                started_at: started_at.clone(),
                finished_at: finished_at.clone(),
                ..Default::default()
            }),
        };
        pb::ContainerState {
            state: Some(state),
            ..Default::default()
        }
    }
}

/// Checks and converts a sandbox status off the wire (`field` names it).
pub fn sandbox_status_from_pb(s: pb::SandboxStatus, field: &str) -> Result<SandboxStatus> {
    let containers = s
        .containers
        .into_iter()
        .enumerate()
        .map(|(i, c)| container_from_pb(c, &format!("{field}.containers[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SandboxStatus {
        sandbox_ready: s.sandbox_ready,
        started_at: s.started_at,
        containers,
        agent_rss_kib: s.agent_rss_kib,
    })
}

fn container_from_pb(c: pb::ContainerStatus, field: &str) -> Result<ContainerStatus> {
    let state = match c.state.into_option() {
        Some(s) => state_from_pb(s, &format!("{field}.state"))?,
        None => return Err(ConvertError::required(format!("{field}.state"))),
    };
    let last_state = c
        .last_state
        .into_option()
        .map(|s| state_from_pb(s, &format!("{field}.lastState")))
        .transpose()?;
    Ok(ContainerStatus {
        name: c.name,
        container_id: c.container_id,
        image: c.image,
        image_id: c.image_id,
        state,
        last_state,
        restart_count: c.restart_count,
    })
}

fn state_from_pb(s: pb::ContainerState, field: &str) -> Result<ContainerState> {
    use pb::container_state::State;
    Ok(match s.state {
        Some(State::Waiting(w)) => ContainerState::Waiting {
            reason: w.reason,
            message: w.message,
        },
        Some(State::Running(r)) => ContainerState::Running {
            started_at: r.started_at,
        },
        Some(State::Terminated(t)) => ContainerState::Terminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: t.reason,
            message: t.message,
            started_at: t.started_at,
            finished_at: t.finished_at,
        },
        None => return Err(ConvertError::required(field.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_state_without_a_case() {
        let s = SandboxStatus {
            sandbox_ready: true,
            started_at: Some("2026-12-01T00:00:00Z".into()),
            containers: vec![ContainerStatus {
                name: "app".into(),
                container_id: "podvm://1".into(),
                image: "busybox".into(),
                image_id: "sha256:00".into(),
                state: ContainerState::Running {
                    started_at: "2026-12-01T00:00:01Z".into(),
                },
                last_state: Some(ContainerState::Terminated {
                    exit_code: 137,
                    signal: Some(9),
                    reason: "Error".into(),
                    message: None,
                    started_at: None,
                    finished_at: "2026-12-01T00:00:00Z".into(),
                }),
                restart_count: 1,
            }],
            agent_rss_kib: Some(900),
        };
        assert_eq!(
            sandbox_status_from_pb(pb::SandboxStatus::from(&s), "status").unwrap(),
            s
        );
        let mut wire = pb::SandboxStatus::from(&s);
        wire.containers[0].state = MessageField::some(pb::ContainerState::default());
        assert_eq!(
            sandbox_status_from_pb(wire, "status").unwrap_err().field,
            "status.containers[0].state"
        );
    }
}
