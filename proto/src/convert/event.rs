//! [`Event`] ↔ `pb::agent::Event`.

use protobuf::EnumOrUnknown;

use super::{ConvertError, Result};
use crate::event::{Event, EventType};
use crate::pb::agent as pb;

impl From<&Event> for pb::Event {
    fn from(e: &Event) -> Self {
        pb::Event {
            seq: e.seq,
            type_: EnumOrUnknown::new(match e.event_type {
                EventType::Normal => pb::event::Type::NORMAL,
                EventType::Warning => pb::event::Type::WARNING,
            }),
            reason: e.reason.clone(),
            message: e.message.clone(),
            container: e.container.clone().unwrap_or_default(),
            first_timestamp: e.first_timestamp.clone(),
            last_timestamp: e.last_timestamp.clone(),
            count: e.count,
            ..Default::default()
        }
    }
}

/// Checks and converts an event off the wire; `field` names it in errors.
pub fn event_from_pb(e: pb::Event, field: &str) -> Result<Event> {
    let event_type = match e.type_.enum_value() {
        Ok(pb::event::Type::NORMAL) => EventType::Normal,
        Ok(pb::event::Type::WARNING) => EventType::Warning,
        Ok(pb::event::Type::TYPE_UNSPECIFIED) => {
            return Err(ConvertError::required(format!("{field}.type")))
        }
        Err(v) => return Err(ConvertError::unknown_enum(format!("{field}.type"), v)),
    };
    if e.reason.is_empty() {
        return Err(ConvertError::required(format!("{field}.reason")));
    }
    Ok(Event {
        seq: e.seq,
        event_type,
        reason: e.reason,
        message: e.message,
        container: (!e.container.is_empty()).then_some(e.container),
        first_timestamp: e.first_timestamp,
        last_timestamp: e.last_timestamp,
        count: e.count.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_type() {
        let e = Event {
            seq: 7,
            event_type: EventType::Warning,
            reason: "BackOff".into(),
            message: "Back-off restarting failed container".into(),
            container: Some("app".into()),
            first_timestamp: "2026-12-01T00:00:00Z".into(),
            last_timestamp: "2026-12-01T00:00:09Z".into(),
            count: 3,
        };
        assert_eq!(event_from_pb(pb::Event::from(&e), "e").unwrap(), e);
        let mut bad = pb::Event::from(&e);
        bad.type_ = EnumOrUnknown::from_i32(0);
        assert_eq!(
            event_from_pb(bad, "events[2]").unwrap_err().field,
            "events[2].type"
        );
    }
}
