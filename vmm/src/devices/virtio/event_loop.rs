//! The device event loop: one thread running an [`EventManager`] (crate
//! `event-manager`) that waits on the queue notification eventfds
//! (registered with KVM as ioeventfds, so a QueueNotify write never leaves
//! the kernel on the vCPU thread) and on the devices' backend fds, and
//! hands each ready fd to the subscriber that holds it:
//!
//! - [`TransportEvents`], one per virtio-mmio transport: its queue
//!   notifiers and its device's backend fds;
//! - [`StopEvent`]: the stop eventfd, which ends the loop.
//!
//! Device work thus runs off the vCPU threads; interrupts go back by irqfd.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use event_manager::{
    EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberId, SubscriberOps,
};
use seccompiler::BpfProgram;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::mmio::MmioTransport;

/// Errors of the event loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An eventfd could not be created or duplicated, or the thread not
    /// started.
    #[error("event loop: {0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The event manager could not be created, watch an fd, or wait.
    #[error("event loop: {0}: {1}")]
    Events(&'static str, #[source] event_manager::Error),
    /// The device thread could not install its seccomp filter.
    #[error("event loop: seccomp: {0}")]
    Seccomp(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Events handled per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 32;

/// A shared transport, as on the MMIO bus.
pub type SharedTransport = Arc<Mutex<MmioTransport>>;

/// What the loop's event manager holds.
type Subscriber = Box<dyn MutEventSubscriber + Send>;

fn lock(transport: &SharedTransport) -> MutexGuard<'_, MmioTransport> {
    transport
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The subscriber holding one transport's fds: the ioeventfd of each queue
/// whose QueueNotify KVM signals (kept open here), and its device's
/// backend fds (owned by the device, fixed for its life).
///
/// Its `init` registers nothing: [`EventLoop`] registers
/// [`TransportEvents::interest`] through the manager's `event_ops`, so that
/// an fd epoll refuses is an error of [`EventLoop::add_device`] rather than
/// a log line of `init`, which cannot fail.
struct TransportEvents {
    transport: SharedTransport,
    /// `(queue index, its ioeventfd)`.
    notifiers: Vec<(u32, EventFd)>,
    /// `VirtioDevice::event_fds()`, in its order.
    backend_fds: Vec<RawFd>,
}

impl TransportEvents {
    fn new(transport: SharedTransport) -> Self {
        Self {
            transport,
            notifiers: Vec::new(),
            backend_fds: Vec::new(),
        }
    }

    /// Every fd this subscriber serves, watched for input.
    fn interest(&self) -> Vec<Events> {
        let notifiers = self
            .notifiers
            .iter()
            .map(|(_, notifier)| Events::new(notifier, EventSet::IN));
        let backend = self
            .backend_fds
            .iter()
            .map(|&fd| Events::new_raw(fd, EventSet::IN));
        notifiers.chain(backend).collect()
    }
}

impl MutEventSubscriber for TransportEvents {
    fn process(&mut self, events: Events, _ops: &mut EventOps) {
        let fd = events.fd();
        if let Some((queue, notifier)) = self
            .notifiers
            .iter()
            .find(|(_, notifier)| notifier.as_raw_fd() == fd)
        {
            // The count does not matter: the queue is served whole.
            let _ = notifier.read();
            lock(&self.transport).notify(*queue);
        } else if let Some(index) = self.backend_fds.iter().position(|&b| b == fd) {
            lock(&self.transport).device_event(index);
        } else {
            log::error!(
                "event loop: event on fd {fd}, which no queue or device of this transport holds"
            );
        }
    }

    fn init(&mut self, _ops: &mut EventOps) {}
}

/// The subscriber holding the stop eventfd: once it fires, `stopped` is
/// set and the loop ends after the events of the same wait.
struct StopEvent {
    eventfd: EventFd,
    stopped: Arc<AtomicBool>,
}

impl StopEvent {
    /// The stop eventfd, watched for input.
    fn interest(&self) -> Vec<Events> {
        vec![Events::new(&self.eventfd, EventSet::IN)]
    }
}

impl MutEventSubscriber for StopEvent {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        // Not read: the eventfd stays readable, so a later wait ends too.
        self.stopped.store(true, Ordering::Release);
    }

    /// Registration is [`EventLoop::new`]'s, as for [`TransportEvents`].
    fn init(&mut self, _ops: &mut EventOps) {}
}

/// The loop before and while it runs.
pub struct EventLoop {
    manager: EventManager<Subscriber>,
    /// Writes end the loop (a duplicate of [`StopEvent`]'s eventfd).
    stop: EventFd,
    stopped: Arc<AtomicBool>,
    /// Transports given queue notifiers whose device is not added yet.
    pending: Vec<TransportEvents>,
}

/// A running loop; [`EventLoopHandle::stop`] ends and joins it.
pub struct EventLoopHandle {
    stop: EventFd,
    /// Gives the loop back, so that its devices are dropped (and, e.g.,
    /// the vsock socket file removed) on the thread that stops it, not
    /// under the device thread's seccomp filter.
    thread: JoinHandle<EventLoop>,
}

impl EventLoop {
    /// An empty loop.
    pub fn new() -> Result<Self> {
        let manager = EventManager::new_with_capacity(EVENTS_PER_WAIT)
            .map_err(|e| Error::Events("epoll_create", e))?;
        let eventfd = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::Io("eventfd", e))?;
        let stop = eventfd.try_clone().map_err(|e| Error::Io("dup", e))?;
        let stopped = Arc::new(AtomicBool::new(false));
        let mut this = Self {
            manager,
            stop,
            stopped: Arc::clone(&stopped),
            pending: Vec::new(),
        };
        let stop_event = StopEvent { eventfd, stopped };
        let interest = stop_event.interest();
        this.subscribe(Box::new(stop_event), interest)?;
        Ok(this)
    }

    /// Adds `subscriber` to the manager and watches `interest` for it; on
    /// an error the subscriber is removed again.
    fn subscribe(&mut self, subscriber: Subscriber, interest: Vec<Events>) -> Result<SubscriberId> {
        let id = self.manager.add_subscriber(subscriber);
        let watched = self
            .manager
            .event_ops(id)
            .and_then(|mut ops| interest.into_iter().try_for_each(|events| ops.add(events)));
        match watched {
            Ok(()) => Ok(id),
            Err(e) => {
                let _ = self.manager.remove_subscriber(id);
                Err(Error::Events("epoll_ctl", e))
            }
        }
    }

    /// The pending subscriber of `transport`, taken out of the pending list.
    fn take_pending(&mut self, transport: &SharedTransport) -> TransportEvents {
        match self
            .pending
            .iter()
            .position(|t| Arc::ptr_eq(&t.transport, transport))
        {
            Some(index) => self.pending.swap_remove(index),
            None => TransportEvents::new(Arc::clone(transport)),
        }
    }

    /// Serves queue `queue` of `transport` whenever `notifier` fires, from
    /// when [`EventLoop::add_device`] adds the transport (or the loop
    /// starts without it).
    pub fn add_queue_notifier(
        &mut self,
        transport: SharedTransport,
        queue: u32,
        notifier: EventFd,
    ) -> Result<()> {
        let mut events = self.take_pending(&transport);
        events.notifiers.push((queue, notifier));
        self.pending.push(events);
        Ok(())
    }

    /// Adds `transport`'s subscriber: the queue notifiers given so far and
    /// every backend fd of its device.
    pub fn add_device(&mut self, transport: &SharedTransport) -> Result<()> {
        let mut events = self.take_pending(transport);
        events.backend_fds = lock(transport).device_event_fds();
        let interest = events.interest();
        self.subscribe(Box::new(events), interest).map(drop)
    }

    /// Adds the transports given queue notifiers but no device.
    fn add_pending(&mut self) -> Result<()> {
        while let Some(events) = self.pending.pop() {
            let interest = events.interest();
            self.subscribe(Box::new(events), interest)?;
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever) and serves what is ready;
    /// `Ok(false)` once the stop eventfd fired.
    pub fn run_once(&mut self, timeout_ms: i32) -> Result<bool> {
        self.add_pending()?;
        // An interrupted wait counts as a wait with nothing ready.
        self.manager
            .run_with_timeout(timeout_ms)
            .map_err(|e| Error::Events("epoll_wait", e))?;
        Ok(!self.stopped.load(Ordering::Acquire))
    }

    /// Runs the loop on its own thread until stopped.
    pub fn spawn(self) -> Result<EventLoopHandle> {
        self.spawn_filtered(None)
    }

    /// Runs the loop on its own thread until stopped, under `filter` (the
    /// device thread's seccomp filter) when given: the thread installs it
    /// before serving anything, and a filter it cannot install is an error
    /// here.
    pub fn spawn_filtered(mut self, filter: Option<BpfProgram>) -> Result<EventLoopHandle> {
        self.add_pending()?;
        let stop = self.stop.try_clone().map_err(|e| Error::Io("dup", e))?;
        let (ready_tx, ready_rx) = mpsc::sync_channel::<std::result::Result<(), String>>(1);
        let thread = std::thread::Builder::new()
            .name("devices".into())
            .spawn(move || {
                if let Some(filter) = &filter {
                    if let Err(e) = crate::seccomp::install(filter) {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return self;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                loop {
                    match self.run_once(-1) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            log::error!("device event loop ends: {e}");
                            break;
                        }
                    }
                }
                self
            })
            .map_err(|e| Error::Io("spawn", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(EventLoopHandle { stop, thread }),
            Ok(Err(e)) => Err(Error::Seccomp(e)),
            Err(_) => Err(Error::Seccomp("the device thread ended at start".into())),
        }
    }
}

impl EventLoopHandle {
    /// Ends the loop and waits for its thread.
    pub fn stop(self) {
        if let Err(e) = self.stop.write(1) {
            log::error!("cannot stop the device event loop: {e}");
            return;
        }
        match self.thread.join() {
            Ok(event_loop) => drop(event_loop),
            Err(_) => log::error!("the device event loop panicked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::mmio::{reg, status, INT_VRING};
    use crate::devices::virtio::rng::Rng;
    use crate::devices::virtio::test_driver::{TestDriver, AVAIL_RING, DATA, F_WRITE, USED_RING};
    use crate::devices::virtio::{VirtioDevice, VIRTIO_F_VERSION_1};
    use crate::devices::BusDevice;
    use std::time::{Duration, Instant};
    use virtio_queue::Queue;
    use vm_memory::GuestMemoryMmap;

    fn wr(t: &SharedTransport, offset: u64, value: u32) {
        lock(t).write(offset, &value.to_le_bytes());
    }

    /// `device` behind a transport whose driver set up one queue and
    /// DRIVER_OK.
    fn ready(driver: &TestDriver, device: Box<dyn VirtioDevice>) -> SharedTransport {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let t = Arc::new(Mutex::new(MmioTransport::new(
            device,
            0xd000_0000,
            driver.mem.clone(),
            irq,
        )));
        wr(&t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        wr(&t, reg::DRIVER_FEATURES_SEL, 1);
        wr(&t, reg::DRIVER_FEATURES, 1);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        wr(&t, reg::STATUS, s);
        wr(&t, reg::QUEUE_NUM, driver.size.into());
        wr(&t, reg::QUEUE_DESC_LOW, 0x1000);
        wr(&t, reg::QUEUE_AVAIL_LOW, AVAIL_RING as u32);
        wr(&t, reg::QUEUE_USED_LOW, USED_RING as u32);
        wr(&t, reg::QUEUE_READY, 1);
        wr(&t, reg::STATUS, s | status::DRIVER_OK);
        t
    }

    fn ready_rng(driver: &TestDriver) -> SharedTransport {
        ready(driver, Box::new(Rng::new()))
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or("?").to_owned()
    }

    /// A device with one queue and one backend eventfd that records, with
    /// the thread's name, each queue it serves, each backend event it
    /// handles, and its drop.
    struct Probe {
        backend: EventFd,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Probe {
        /// The probe, its backend's writer side, and what it records.
        fn new() -> (Self, EventFd, Arc<Mutex<Vec<String>>>) {
            let backend = EventFd::new(EFD_NONBLOCK).unwrap();
            let writer = backend.try_clone().unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let probe = Self {
                backend,
                seen: Arc::clone(&seen),
            };
            (probe, writer, seen)
        }

        fn record(&self, what: String) {
            self.seen.lock().unwrap().push(what);
        }
    }

    impl VirtioDevice for Probe {
        fn device_type(&self) -> u32 {
            crate::devices::virtio::VIRTIO_ID_RNG
        }
        fn avail_features(&self) -> u64 {
            1 << VIRTIO_F_VERSION_1
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &[8]
        }
        fn read_config(&self, _offset: u64, data: &mut [u8]) {
            data.fill(0);
        }
        fn process_queue(
            &mut self,
            index: usize,
            _queues: &mut [Queue],
            _mem: &GuestMemoryMmap,
        ) -> crate::devices::virtio::Result<bool> {
            self.record(format!("queue {index} on {}", thread_name()));
            Ok(false)
        }
        fn event_fds(&self) -> Vec<RawFd> {
            vec![self.backend.as_raw_fd()]
        }
        fn handle_event(
            &mut self,
            index: usize,
            _queues: &mut [Queue],
            _mem: &GuestMemoryMmap,
        ) -> crate::devices::virtio::Result<bool> {
            let _ = self.backend.read();
            self.record(format!("backend {index} on {}", thread_name()));
            Ok(false)
        }
        fn reset(&mut self) {}
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.record(format!("dropped on {}", thread_name()));
        }
    }

    #[test]
    fn a_fired_notifier_is_served_on_the_loop_thread() {
        let mut driver = TestDriver::new(8);
        let t = ready_rng(&driver);
        let notifier = EventFd::new(EFD_NONBLOCK).unwrap();
        let kvm_side = notifier.try_clone().unwrap();
        let mut event_loop = EventLoop::new().unwrap();
        event_loop
            .add_queue_notifier(Arc::clone(&t), 0, notifier)
            .unwrap();
        event_loop.add_device(&t).unwrap();
        let handle = event_loop.spawn().unwrap();
        driver.add_chain(0, &[(DATA, 16, F_WRITE, 0)]);
        // What KVM does when the guest writes 0 to QueueNotify.
        kvm_side.write(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while driver.used_idx() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        handle.stop();
        assert_eq!(driver.used(0), (0, 16));
        let mut isr = [0u8; 4];
        lock(&t).read(reg::INTERRUPT_STATUS, &mut isr);
        assert_eq!(u32::from_le_bytes(isr), INT_VRING);
        assert_eq!(lock(&t).interrupt_fd().read().unwrap(), 1);
    }

    #[test]
    fn run_once_times_out_and_stops() {
        let mut event_loop = EventLoop::new().unwrap();
        assert!(event_loop.run_once(0).unwrap());
        event_loop.stop.write(1).unwrap();
        assert!(!event_loop.run_once(0).unwrap());
        // The stop eventfd is left readable: the loop stays stopped.
        assert!(!event_loop.run_once(0).unwrap());
    }

    #[test]
    fn each_transport_serves_its_own_notifiers_and_backend_fds_and_is_dropped_by_the_stopper() {
        let driver = TestDriver::new(8);
        let (probe_a, backend_a, seen_a) = Probe::new();
        let (probe_b, _backend_b, seen_b) = Probe::new();
        let a = ready(&driver, Box::new(probe_a));
        let b = ready(&driver, Box::new(probe_b));
        let notifier_a = EventFd::new(EFD_NONBLOCK).unwrap();
        let notifier_b = EventFd::new(EFD_NONBLOCK).unwrap();
        let kvm_b = notifier_b.try_clone().unwrap();
        let mut event_loop = EventLoop::new().unwrap();
        // Interleaved, as nothing says a transport's calls come together.
        event_loop
            .add_queue_notifier(Arc::clone(&a), 0, notifier_a)
            .unwrap();
        event_loop
            .add_queue_notifier(Arc::clone(&b), 0, notifier_b)
            .unwrap();
        event_loop.add_device(&a).unwrap();
        event_loop.add_device(&b).unwrap();
        // From here the loop holds the only references to the transports.
        drop((a, b));
        let handle = event_loop.spawn().unwrap();
        kvm_b.write(1).unwrap();
        backend_a.write(1).unwrap();
        wait_until("the queue notify", || !seen_b.lock().unwrap().is_empty());
        wait_until("the backend event", || !seen_a.lock().unwrap().is_empty());
        handle.stop();
        let stopper = format!("dropped on {}", thread_name());
        assert_eq!(
            *seen_b.lock().unwrap(),
            ["queue 0 on devices", &stopper],
            "b's notifier serves b's queue on the loop thread; the stopper drops b"
        );
        assert_eq!(*seen_a.lock().unwrap(), ["backend 0 on devices", &stopper]);
    }

    #[test]
    fn a_notifier_whose_device_is_never_added_is_served_once_the_loop_runs() {
        let mut driver = TestDriver::new(8);
        let t = ready_rng(&driver);
        let notifier = EventFd::new(EFD_NONBLOCK).unwrap();
        let kvm_side = notifier.try_clone().unwrap();
        let mut event_loop = EventLoop::new().unwrap();
        event_loop
            .add_queue_notifier(Arc::clone(&t), 0, notifier)
            .unwrap();
        driver.add_chain(0, &[(DATA, 8, F_WRITE, 0)]);
        kvm_side.write(1).unwrap();
        assert!(event_loop.run_once(1000).unwrap());
        assert_eq!(driver.used(0), (0, 8));
    }

    #[test]
    fn an_fd_epoll_refuses_is_an_error_of_add_device() {
        let driver = TestDriver::new(8);
        let (probe, _writer, _seen) = Probe::new();
        let t = ready(&driver, Box::new(probe));
        let mut event_loop = EventLoop::new().unwrap();
        event_loop.add_device(&t).unwrap();
        // Its backend fd is watched already.
        let err = event_loop.add_device(&t).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Events("epoll_ctl", event_manager::Error::FdAlreadyRegistered)
            ),
            "{err}"
        );
        // The loop still runs what it had.
        assert!(event_loop.run_once(0).unwrap());
    }
}
