//! The event watch: the owner keeps one long poll open on the agent and
//! writes every batch of events and every status change into the record as
//! it arrives. A broken connection is dialled again (the VM may still run);
//! the loop ends when `stop` is set.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::keeper::Keeper;
use super::link::AgentLink;

/// Pause after a failed call before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Runs the watch until `stop`; `redial` gives a new connection (or
/// `None` when the agent cannot be reached now).
pub fn run(
    keeper: &Keeper,
    mut agent: Arc<dyn AgentLink>,
    redial: &dyn Fn() -> Option<Arc<dyn AgentLink>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let cursor = keeper.snapshot().watch;
        match agent.events(cursor.after_seq, cursor.status_generation) {
            Ok(batch) => {
                if let Err(e) = keeper.absorb(batch) {
                    eprintln!("podvm owner: cannot record the pod's events: {e:#}");
                    std::thread::sleep(RETRY_PAUSE);
                }
            }
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                eprintln!("podvm owner: event watch: {e}");
                std::thread::sleep(RETRY_PAUSE);
                if let Some(fresh) = redial() {
                    agent = fresh;
                }
            }
        }
    }
}
