//! The owner's copy of the pod record: every change goes through
//! [`Keeper::update`], which applies it under a lock and writes the record
//! durably (atomic rename) before returning, so what `get` reads is what
//! the owner knows.

use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use podvm_proto::{Event, EventBatch};

use super::lifecycle::{FailureReason, Lifecycle};
use crate::state::{PodRecord, StateDir, MAX_EVENTS};

pub struct Keeper {
    state: StateDir,
    record: Mutex<PodRecord>,
}

impl Keeper {
    pub fn new(state: StateDir, record: PodRecord) -> Self {
        Keeper {
            state,
            record: Mutex::new(record),
        }
    }

    /// A copy of the record as it is now.
    pub fn snapshot(&self) -> PodRecord {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `change` and saves the record.
    pub fn update(&self, change: impl FnOnce(&mut PodRecord)) -> Result<()> {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut record);
        self.state.save(&record)
    }

    /// Records a failure, unless the pod is already failed or being
    /// deleted (the first word on how it ended stays).
    pub fn fail(&self, reason: FailureReason, message: String) -> Result<()> {
        self.update(|r| {
            if matches!(r.lifecycle, Lifecycle::Creating | Lifecycle::Running) {
                r.lifecycle = Lifecycle::Failed { reason, message };
            }
        })
    }

    /// Takes in what the event watch returned.
    pub fn absorb(&self, batch: EventBatch) -> Result<()> {
        self.update(|r| {
            for event in batch.events {
                r.watch.after_seq = r.watch.after_seq.max(event.seq);
                fold_event(&mut r.events, event);
            }
            r.watch.status_generation = batch.status_generation;
            r.last_status = Some(batch.status);
        })
    }
}

/// Adds `event` to `events`: an update of an event already kept (the
/// agent folds repeats and sends them again with a new sequence number)
/// replaces it and moves to the end; the oldest go beyond [`MAX_EVENTS`].
pub fn fold_event(events: &mut Vec<Event>, event: Event) {
    events.retain(|e| {
        !(e.event_type == event.event_type
            && e.reason == event.reason
            && e.message == event.message
            && e.container == event.container
            && e.first_timestamp == event.first_timestamp)
    });
    events.push(event);
    let excess = events.len().saturating_sub(MAX_EVENTS);
    events.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;
    use podvm_proto::EventType;

    fn event(seq: u64, reason: &str, count: u32) -> Event {
        Event {
            seq,
            event_type: EventType::Warning,
            reason: reason.into(),
            message: "m".into(),
            container: Some("app".into()),
            first_timestamp: "2026-12-01T00:00:00Z".into(),
            last_timestamp: format!("2026-12-01T00:00:{seq:02}Z"),
            count,
        }
    }

    #[test]
    fn updates_replace_and_the_oldest_go() {
        let mut events = vec![event(1, "BackOff", 1), event(2, "Started", 1)];
        fold_event(&mut events, event(3, "BackOff", 2));
        let reasons: Vec<_> = events
            .iter()
            .map(|e| (e.reason.as_str(), e.count))
            .collect();
        assert_eq!(reasons, [("Started", 1), ("BackOff", 2)]);
        for seq in 10..(10 + MAX_EVENTS as u64) {
            fold_event(&mut events, event(seq, &format!("R{seq}"), 1));
        }
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0].reason, "R10");
    }
}
