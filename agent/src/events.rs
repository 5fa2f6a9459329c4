//! The pod's event log and status generation, which the host watches with
//! the `GetEvents` long poll.
//!
//! Events are Kubernetes' (core/v1 Event: type, reason, message, the
//! container they are about, first and last time, count), numbered from 1 in
//! the order they happen. A repeat of an event still in the history (same
//! type, reason, message and container) is folded into it the way
//! client-go's event correlator does: its count goes up, its last timestamp
//! moves on, its first timestamp stays, and it takes a new sequence number
//! and the end of the history, so a watcher asking for "after N" sees the
//! update (the host replaces the older copy it holds). The history is
//! bounded; the oldest events fall off.
//!
//! The status generation is a counter bumped on every change of the pod's
//! status (a container's state, last state or restart count, the sandbox's
//! readiness), so a watcher learns "the status moved" without polling it.
//! It starts at 1: a watcher that knows nothing passes 0 and is answered at
//! once.
//!
//! [`kubelet`] holds the events kubelet records for a container's
//! lifecycle, with its reasons and messages.

pub mod kubelet;

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use podvm_proto::limits::MAX_EVENTS_PER_REPLY;
use podvm_proto::{Event, EventType};

use crate::ids::now_rfc3339;

/// How many events the log keeps (a folded event is one of them).
pub const HISTORY: usize = 1000;

/// See the module documentation.
pub struct EventLog {
    state: Mutex<State>,
    changed: Condvar,
    /// Signalled when a watcher starts waiting (lets tests wait for one).
    #[cfg(test)]
    watcher_waits: Condvar,
}

struct State {
    /// Oldest first; sequence numbers strictly increase along it.
    events: VecDeque<Event>,
    /// The last sequence number handed out (0: none yet).
    last_seq: u64,
    generation: u64,
    /// Watchers blocked in [`EventLog::watch`] (lets tests wait for one).
    #[cfg(test)]
    waiting: usize,
}

impl State {
    /// Up to a reply's worth of the events after `after_seq`, oldest first.
    fn after(&self, after_seq: u64) -> Vec<Event> {
        let start = self.events.partition_point(|e| e.seq <= after_seq);
        self.events
            .range(start..)
            .take(MAX_EVENTS_PER_REPLY)
            .cloned()
            .collect()
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq = self.last_seq.saturating_add(1);
        self.last_seq
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl EventLog {
    /// An empty log at status generation 1.
    pub fn new() -> EventLog {
        EventLog {
            state: Mutex::new(State {
                events: VecDeque::new(),
                last_seq: 0,
                generation: 1,
                #[cfg(test)]
                waiting: 0,
            }),
            changed: Condvar::new(),
            #[cfg(test)]
            watcher_waits: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an event (`container`: `None` when it is about the pod),
    /// folding it into an equal one still in the history.
    pub fn record(
        &self,
        event_type: EventType,
        reason: &str,
        message: String,
        container: Option<&str>,
    ) {
        self.record_at(event_type, reason, message, container, now_rfc3339());
    }

    /// [`EventLog::record`] at the time `now` (RFC 3339, UTC).
    fn record_at(
        &self,
        event_type: EventType,
        reason: &str,
        message: String,
        container: Option<&str>,
        now: String,
    ) {
        let mut state = self.lock();
        let seq = state.next_seq();
        let earlier = state.events.iter().rposition(|e| {
            e.event_type == event_type
                && e.reason == reason
                && e.message == message
                && e.container.as_deref() == container
        });
        let event = match earlier.and_then(|i| state.events.remove(i)) {
            Some(mut event) => {
                event.seq = seq;
                event.count = event.count.saturating_add(1);
                event.last_timestamp = now;
                event
            }
            None => Event {
                seq,
                event_type,
                reason: reason.to_owned(),
                message,
                container: container.map(str::to_owned),
                first_timestamp: now.clone(),
                last_timestamp: now,
                count: 1,
            },
        };
        state.events.push_back(event);
        while state.events.len() > HISTORY {
            state.events.pop_front();
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Announces a change of the pod's status: the generation moves on and
    /// watchers wake.
    pub fn status_changed(&self) {
        let mut state = self.lock();
        // Never back to 0, which watchers use for "nothing seen yet".
        state.generation = state.generation.checked_add(1).unwrap_or(1);
        drop(state);
        self.changed.notify_all();
    }

    /// The events after `after_seq` (at most
    /// [`MAX_EVENTS_PER_REPLY`], oldest first) and the current status
    /// generation. Answers at once when there are such events or the
    /// generation differs from `status_generation`; otherwise waits up to
    /// `hold` for either, and then answers with no events.
    pub fn watch(
        &self,
        after_seq: u64,
        status_generation: u64,
        hold: Duration,
    ) -> (Vec<Event>, u64) {
        let deadline = Instant::now().checked_add(hold);
        let mut state = self.lock();
        loop {
            let events = state.after(after_seq);
            if !events.is_empty() || state.generation != status_generation {
                return (events, state.generation);
            }
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => hold,
            };
            if left.is_zero() {
                return (events, state.generation);
            }
            #[cfg(test)]
            {
                state.waiting += 1;
                self.watcher_waits.notify_all();
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
            #[cfg(test)]
            {
                state.waiting -= 1;
            }
        }
    }

    /// Waits until `n` watchers are blocked in [`EventLog::watch`].
    #[cfg(test)]
    fn wait_for_watchers(&self, n: usize) {
        let mut state = self.lock();
        while state.waiting < n {
            state = match self.watcher_waits.wait(state) {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Last-resort limit for a watch that should be woken; never reached
    /// when the code works.
    const LONG: Duration = Duration::from_secs(300);

    fn normal(log: &EventLog, reason: &str, message: &str, container: Option<&str>, at: &str) {
        log.record_at(
            EventType::Normal,
            reason,
            message.into(),
            container,
            at.into(),
        );
    }

    fn all(log: &EventLog) -> Vec<Event> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (batch, _) = log.watch(after, 0, Duration::ZERO);
            match batch.last() {
                Some(last) => after = last.seq,
                None => return out,
            }
            out.extend(batch);
        }
    }

    #[test]
    fn new_events_are_numbered_in_order() {
        let log = EventLog::new();
        normal(&log, "Pulled", "image", Some("a"), "2024-01-01T00:00:00Z");
        normal(
            &log,
            "Created",
            "Created container: a",
            Some("a"),
            "2024-01-01T00:00:01Z",
        );
        log.record(EventType::Warning, "Failed", "Error: x".into(), None);
        let events = all(&log);
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(events[0].reason, "Pulled");
        assert_eq!(events[0].container.as_deref(), Some("a"));
        assert_eq!(events[0].count, 1);
        assert_eq!(events[0].first_timestamp, events[0].last_timestamp);
        assert_eq!(events[2].event_type, EventType::Warning);
        assert_eq!(events[2].container, None);
        let stamp = &events[2].first_timestamp;
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok() && stamp.ends_with('Z'),
            "{stamp}"
        );
    }

    #[test]
    fn repeats_fold_with_a_new_seq_at_the_end() {
        let log = EventLog::new();
        normal(
            &log,
            "Started",
            "Started container a",
            Some("a"),
            "2024-01-01T00:00:00Z",
        );
        normal(
            &log,
            "Started",
            "Started container b",
            Some("b"),
            "2024-01-01T00:00:01Z",
        );
        normal(
            &log,
            "Started",
            "Started container a",
            Some("a"),
            "2024-01-01T00:00:05Z",
        );
        let events = all(&log);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].message, "Started container b");
        let a = &events[1];
        assert_eq!((a.seq, a.count), (3, 2));
        assert_eq!(a.first_timestamp, "2024-01-01T00:00:00Z");
        assert_eq!(a.last_timestamp, "2024-01-01T00:00:05Z");

        // A watcher that saw seq 2 gets the folded event again.
        let (after_two, _) = log.watch(2, 0, Duration::ZERO);
        assert_eq!(after_two, vec![a.clone()]);
    }

    #[test]
    fn only_equal_events_fold() {
        let log = EventLog::new();
        let at = "2024-01-01T00:00:00Z";
        normal(&log, "Killing", "Stopping container a", Some("a"), at);
        normal(&log, "Killing", "Stopping container a", Some("b"), at);
        normal(&log, "Killing", "Stopping container a", None, at);
        normal(&log, "Other", "Stopping container a", Some("a"), at);
        normal(&log, "Killing", "Stopping container b", Some("a"), at);
        log.record_at(
            EventType::Warning,
            "Killing",
            "Stopping container a".into(),
            Some("a"),
            at.into(),
        );
        let events = all(&log);
        assert_eq!(events.len(), 6);
        assert!(events.iter().all(|e| e.count == 1));
    }

    #[test]
    fn history_is_bounded_and_replies_are_capped() {
        let log = EventLog::new();
        let extra = 7;
        for i in 0..HISTORY + extra {
            normal(
                &log,
                "N",
                &format!("event {i}"),
                None,
                "2024-01-01T00:00:00Z",
            );
        }
        let (first, _) = log.watch(0, 0, Duration::ZERO);
        assert_eq!(first.len(), MAX_EVENTS_PER_REPLY);
        assert_eq!(first[0].seq, extra as u64 + 1);
        assert!(first.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        let events = all(&log);
        assert_eq!(events.len(), HISTORY);
        assert_eq!(events[0].message, format!("event {extra}"));
        assert_eq!(events[HISTORY - 1].seq, (HISTORY + extra) as u64);

        // The oldest event folded: it moves to the end, nothing is lost.
        normal(
            &log,
            "N",
            &format!("event {extra}"),
            None,
            "2024-01-01T00:00:09Z",
        );
        let events = all(&log);
        assert_eq!(events.len(), HISTORY);
        let last = &events[HISTORY - 1];
        assert_eq!((last.count, last.seq), (2, (HISTORY + extra + 1) as u64));
        assert_eq!(events[0].message, format!("event {}", extra + 1));
    }

    #[test]
    fn generation_starts_at_one_and_answers_a_stale_watcher_at_once() {
        let log = EventLog::new();
        assert_eq!(log.watch(0, 0, LONG), (Vec::new(), 1));
        log.status_changed();
        assert_eq!(log.watch(0, 1, LONG), (Vec::new(), 2));
        // Up to date and nothing new: answered empty once the hold passes.
        assert_eq!(log.watch(0, 2, Duration::from_millis(1)), (Vec::new(), 2));
        // A hold too long to add to the clock still works.
        normal(&log, "N", "m", None, "2024-01-01T00:00:00Z");
        let (events, generation) = log.watch(0, 2, Duration::MAX);
        assert_eq!((events.len(), generation), (1, 2));
    }

    #[test]
    fn a_new_event_wakes_a_watcher() {
        let log = Arc::new(EventLog::new());
        normal(&log, "N", "old", None, "2024-01-01T00:00:00Z");
        let watcher = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.watch(1, 1, LONG))
        };
        log.wait_for_watchers(1);
        normal(&log, "N", "new", Some("c"), "2024-01-01T00:00:01Z");
        let (events, generation) = watcher.join().unwrap();
        assert_eq!(generation, 1);
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].seq, events[0].message.as_str()), (2, "new"));
    }

    #[test]
    fn a_status_change_wakes_every_watcher() {
        let log = Arc::new(EventLog::new());
        let watchers: Vec<_> = (0..3)
            .map(|_| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || log.watch(0, 1, LONG))
            })
            .collect();
        log.wait_for_watchers(3);
        log.status_changed();
        for watcher in watchers {
            assert_eq!(watcher.join().unwrap(), (Vec::new(), 2));
        }
    }
}
