//! The service loop: waiting on the two used indexes, one poll round per
//! change (tx buffers back, rx packets in, packets out), until the client
//! finished and the stop connection came with no echo connection left
//! open; then the stop connection is closed.

use super::conn::Role;
use super::driver::Vsock;
use super::header::SHUTDOWN_BOTH;
use super::layout::{MAX_CONNS, TX};

/// Polls without progress allowed while closing the stop connection.
const CLOSE_POLLS: u32 = 1_000_000;

impl Vsock {
    /// Whether the work asked for is done: the client finished, and the
    /// stop connection came with no echo connection left open.
    fn done(&self) -> bool {
        let client_done = !self.client_open;
        let echo_done = self.listen.is_none() || (self.stop_requested && self.echo_open == 0);
        client_done && echo_done
    }

    /// One round: tx buffers back, rx packets in, packets out.
    fn poll(&mut self) -> bool {
        if !self.fresh && !self.tx.q.has_used() && !self.rx.has_used() {
            return false;
        }
        let mut progress = false;
        // tx buffers back; rx buffers lent to them go back to the rx queue.
        while let Some((id, _)) = self.tx.q.pop_used() {
            self.tx.free |= 1 << id;
            if let Some(rx_id) = self.tx.lent[usize::from(id)].take() {
                self.rx.push(rx_id);
                self.lent -= 1;
            }
            progress = true;
        }
        progress |= self.poll_rx();
        // Packets go out for the connections that asked ([`Vsock::wake`]),
        // again when tx buffers came back.
        if self.pump_mask != 0 && (progress || self.fresh) {
            progress |= self.pump();
        } else if self.tx.q.unpublished() > 0 {
            // Echoed rx buffers.
            self.tx.q.publish();
            self.mmio.notify(TX);
        }
        progress
    }

    /// Serves until [`Vsock::done`], then closes the stop connection.
    pub fn run(&mut self) {
        while !self.done() {
            // The state changes only when something happened; waiting
            // for it reads the two used indexes and nothing else.
            while !self.fresh && !self.tx.q.has_used() && !self.rx.has_used() {
                core::hint::spin_loop();
            }
            self.poll();
        }
        for conn in self.conns.iter_mut().flatten() {
            if conn.role == Role::Stop {
                conn.want_shutdown = SHUTDOWN_BOTH;
            }
        }
        for n in 0..MAX_CONNS {
            self.wake(n);
        }
        let mut idle = 0;
        while self.open() > 0 && idle < CLOSE_POLLS {
            if self.poll() {
                idle = 0;
            } else {
                idle += 1;
                core::hint::spin_loop();
            }
        }
    }
}
