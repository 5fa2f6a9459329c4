//! [`SandboxStatus`] ↔ `pb::agent::SandboxStatus`. Off the wire the pod
//! phase and each condition's type are required (an agent always knows
//! them).

use protobuf::{EnumOrUnknown, MessageField};

use super::{ConvertError, Result};
use crate::pb::agent as pb;
use crate::status::{
    ContainerState, ContainerStatus, PodCondition, PodConditionType, PodPhase, SandboxStatus,
};

fn phase_to_pb(p: PodPhase) -> EnumOrUnknown<pb::PodPhase> {
    EnumOrUnknown::new(match p {
        PodPhase::Pending => pb::PodPhase::POD_PHASE_PENDING,
        PodPhase::Running => pb::PodPhase::POD_PHASE_RUNNING,
        PodPhase::Succeeded => pb::PodPhase::POD_PHASE_SUCCEEDED,
        PodPhase::Failed => pb::PodPhase::POD_PHASE_FAILED,
    })
}

fn phase_from_pb(p: EnumOrUnknown<pb::PodPhase>, field: &str) -> Result<PodPhase> {
    match p.enum_value() {
        Ok(pb::PodPhase::POD_PHASE_PENDING) => Ok(PodPhase::Pending),
        Ok(pb::PodPhase::POD_PHASE_RUNNING) => Ok(PodPhase::Running),
        Ok(pb::PodPhase::POD_PHASE_SUCCEEDED) => Ok(PodPhase::Succeeded),
        Ok(pb::PodPhase::POD_PHASE_FAILED) => Ok(PodPhase::Failed),
        Ok(pb::PodPhase::POD_PHASE_UNSPECIFIED) => Err(ConvertError::required(field)),
        Err(v) => Err(ConvertError::unknown_enum(field, v)),
    }
}

impl From<&PodCondition> for pb::PodCondition {
    fn from(c: &PodCondition) -> Self {
        use pb::PodConditionType as T;
        pb::PodCondition {
            type_: EnumOrUnknown::new(match c.condition_type {
                PodConditionType::PodReadyToStartContainers => {
                    T::POD_CONDITION_TYPE_POD_READY_TO_START_CONTAINERS
                }
                PodConditionType::Initialized => T::POD_CONDITION_TYPE_INITIALIZED,
                PodConditionType::ContainersReady => T::POD_CONDITION_TYPE_CONTAINERS_READY,
            }),
            status: c.status,
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_transition_time: c.last_transition_time.clone(),
            ..Default::default()
        }
    }
}

fn condition_from_pb(c: pb::PodCondition, field: &str) -> Result<PodCondition> {
    use pb::PodConditionType as T;
    let type_field = format!("{field}.type");
    let condition_type = match c.type_.enum_value() {
        Ok(T::POD_CONDITION_TYPE_POD_READY_TO_START_CONTAINERS) => {
            PodConditionType::PodReadyToStartContainers
        }
        Ok(T::POD_CONDITION_TYPE_INITIALIZED) => PodConditionType::Initialized,
        Ok(T::POD_CONDITION_TYPE_CONTAINERS_READY) => PodConditionType::ContainersReady,
        Ok(T::POD_CONDITION_TYPE_UNSPECIFIED) => return Err(ConvertError::required(type_field)),
        Err(v) => return Err(ConvertError::unknown_enum(type_field, v)),
    };
    if c.last_transition_time.is_empty() {
        return Err(ConvertError::required(format!(
            "{field}.lastTransitionTime"
        )));
    }
    Ok(PodCondition {
        condition_type,
        status: c.status,
        reason: c.reason,
        message: c.message,
        last_transition_time: c.last_transition_time,
    })
}

impl From<&SandboxStatus> for pb::SandboxStatus {
    fn from(s: &SandboxStatus) -> Self {
        pb::SandboxStatus {
            sandbox_ready: s.sandbox_ready,
            started_at: s.started_at.clone(),
            containers: s.containers.iter().map(pb::ContainerStatus::from).collect(),
            agent_rss_kib: s.agent_rss_kib,
            phase: phase_to_pb(s.phase),
            reason: s.reason.clone(),
            message: s.message.clone(),
            conditions: s.conditions.iter().map(pb::PodCondition::from).collect(),
            init_containers: s
                .init_containers
                .iter()
                .map(pb::ContainerStatus::from)
                .collect(),
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
            ready: c.ready,
            started: c.started,
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
    let statuses = |list: Vec<pb::ContainerStatus>, at: &str| {
        list.into_iter()
            .enumerate()
            .map(|(i, c)| container_from_pb(c, &format!("{field}.{at}[{i}]")))
            .collect::<Result<Vec<_>>>()
    };
    let init_containers = statuses(s.init_containers, "initContainers")?;
    let containers = statuses(s.containers, "containers")?;
    let conditions = s
        .conditions
        .into_iter()
        .enumerate()
        .map(|(i, c)| condition_from_pb(c, &format!("{field}.conditions[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(SandboxStatus {
        sandbox_ready: s.sandbox_ready,
        started_at: s.started_at,
        phase: phase_from_pb(s.phase, &format!("{field}.phase"))?,
        reason: s.reason,
        message: s.message,
        conditions,
        init_containers,
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
        ready: c.ready,
        started: c.started,
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
    use protobuf::Message;

    use super::*;
    use crate::convert::fixtures::status;

    /// The error a status edited on the wire by `edit` is refused with.
    fn refused(edit: impl FnOnce(&mut pb::SandboxStatus)) -> String {
        let mut wire = pb::SandboxStatus::from(&status());
        edit(&mut wire);
        sandbox_status_from_pb(wire, "status")
            .expect_err("the edited status is refused")
            .to_string()
    }

    #[test]
    fn round_trip() {
        let s = status();
        assert_eq!(
            sandbox_status_from_pb(pb::SandboxStatus::from(&s), "status").unwrap(),
            s
        );
        let bytes = pb::SandboxStatus::from(&s).write_to_bytes().unwrap();
        let wire = pb::SandboxStatus::parse_from_bytes(&bytes).unwrap();
        assert_eq!(sandbox_status_from_pb(wire, "status").unwrap(), s);
        for phase in [PodPhase::Pending, PodPhase::Running, PodPhase::Succeeded] {
            let s = SandboxStatus { phase, ..status() };
            assert_eq!(
                sandbox_status_from_pb(pb::SandboxStatus::from(&s), "status").unwrap(),
                s
            );
        }
    }

    #[test]
    fn a_state_without_a_case_is_named() {
        let e =
            refused(|w| w.containers[0].state = MessageField::some(pb::ContainerState::default()));
        assert_eq!(e, "status.containers[0].state: Required value");
        let e = refused(|w| w.init_containers[0].state = MessageField::none());
        assert_eq!(e, "status.initContainers[0].state: Required value");
    }

    #[test]
    fn the_phase_is_required() {
        let e = refused(|w| w.phase = EnumOrUnknown::default());
        assert_eq!(e, "status.phase: Required value");
        let e = refused(|w| w.phase = EnumOrUnknown::from_i32(12));
        assert_eq!(e, "status.phase: Unsupported value: 12");
    }

    #[test]
    fn condition_types_and_times_are_required() {
        let e = refused(|w| w.conditions[1].type_ = EnumOrUnknown::default());
        assert_eq!(e, "status.conditions[1].type: Required value");
        let e = refused(|w| w.conditions[2].type_ = EnumOrUnknown::from_i32(40));
        assert_eq!(e, "status.conditions[2].type: Unsupported value: 40");
        let e = refused(|w| w.conditions[0].last_transition_time.clear());
        assert_eq!(e, "status.conditions[0].lastTransitionTime: Required value");
    }
}
