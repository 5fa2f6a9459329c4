//! `GetEvents`: the event watch. Answers as soon as there are events after
//! the client's last one or the status generation moved, else after the
//! hold; always with the current status.

use std::time::Duration;

use podvm_proto::limits::MAX_EVENTS_PER_REPLY;
use podvm_proto::pb::agent as pb;
use protobuf::{Message, MessageField};

use crate::agent::Agent;

/// Largest answer built: well under ttrpc's 4 MiB message limit, which
/// would turn the answer into an error. Events that do not fit come with
/// the next call (the client asks for what follows the last one it got).
const MAX_REPLY_BYTES: u64 = 3 << 20;

pub fn get(agent: &Agent, req: &pb::GetEventsRequest, hold: Duration) -> pb::GetEventsResponse {
    let (events, generation) = agent
        .events()
        .watch(req.after_seq, req.status_generation, hold);
    // Read after the generation: the status is at least that new.
    let status = agent.status();
    let mut reply = pb::GetEventsResponse {
        events: events
            .iter()
            .take(MAX_EVENTS_PER_REPLY)
            .map(pb::Event::from)
            .collect(),
        status: MessageField::some(pb::SandboxStatus::from(&status)),
        status_generation: generation,
        ..Default::default()
    };
    fit(&mut reply, MAX_REPLY_BYTES);
    reply
}

/// Drops events from the end until the answer encodes to at most `max`
/// bytes (keeping at least one).
fn fit(reply: &mut pb::GetEventsResponse, max: u64) {
    while reply.events.len() > 1 && reply.compute_size() > max {
        let keep = reply.events.len() / 2;
        reply.events.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_answers_are_cut_to_fit_keeping_the_oldest() {
        let event = |seq: u64| pb::Event {
            seq,
            reason: "Failed".into(),
            message: "x".repeat(10_000),
            ..Default::default()
        };
        let mut reply = pb::GetEventsResponse {
            events: (1..=100).map(event).collect(),
            ..Default::default()
        };
        fit(&mut reply, 1_000_000);
        assert!(reply.compute_size() <= 1_000_000);
        assert!(!reply.events.is_empty());
        assert_eq!(reply.events[0].seq, 1);
        let kept = reply.events.len();
        fit(&mut reply, 1_000_000);
        assert_eq!(reply.events.len(), kept);
        // One event is always kept, even if it alone is too big.
        fit(&mut reply, 10);
        assert_eq!(reply.events.len(), 1);
    }
}
