//! The device event loop: one thread that waits (epoll) on the queue
//! notification eventfds (registered with KVM as ioeventfds, so a
//! QueueNotify write never leaves the kernel on the vCPU thread) and on
//! the devices' backend fds, and lets each transport serve them. Device
//! work thus runs off the vCPU threads; interrupts go back by irqfd.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use seccompiler::BpfProgram;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::mmio::MmioTransport;

/// Errors of the event loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// epoll or an eventfd could not be created or changed.
    #[error("event loop: {0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The device thread could not install its seccomp filter.
    #[error("event loop: seccomp: {0}")]
    Seccomp(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The epoll token of the stop eventfd.
const STOP_TOKEN: u64 = u64::MAX;
/// Events handled per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 32;

/// A shared transport, as on the MMIO bus.
pub type SharedTransport = Arc<Mutex<MmioTransport>>;

/// What one registered fd stands for.
enum Source {
    /// The ioeventfd of queue `.1` of a transport (kept open here).
    Queue(SharedTransport, u32, EventFd),
    /// Backend fd number `.1` of a transport's device.
    Device(SharedTransport, usize),
}

/// The loop before and while it runs.
pub struct EventLoop {
    epoll: Epoll,
    stop: EventFd,
    sources: Vec<Source>,
}

/// A running loop; [`EventLoopHandle::stop`] ends and joins it.
pub struct EventLoopHandle {
    stop: EventFd,
    /// Gives the loop back, so that its devices are dropped (and, e.g.,
    /// the vsock socket file removed) on the thread that stops it, not
    /// under the device thread's seccomp filter.
    thread: JoinHandle<EventLoop>,
}

fn lock(transport: &SharedTransport) -> MutexGuard<'_, MmioTransport> {
    transport
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventLoop {
    /// An empty loop.
    pub fn new() -> Result<Self> {
        let epoll = Epoll::new().map_err(|e| Error::Io("epoll_create", e))?;
        let stop = EventFd::new(EFD_NONBLOCK).map_err(|e| Error::Io("eventfd", e))?;
        let this = Self {
            epoll,
            stop,
            sources: Vec::new(),
        };
        this.watch(this.stop.as_raw_fd(), STOP_TOKEN)?;
        Ok(this)
    }

    fn watch(&self, fd: RawFd, token: u64) -> Result<()> {
        self.epoll
            .ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )
            .map_err(|e| Error::Io("epoll_ctl", e))
    }

    fn add(&mut self, fd: RawFd, source: Source) -> Result<()> {
        self.watch(fd, self.sources.len() as u64)?;
        self.sources.push(source);
        Ok(())
    }

    /// Serves queue `queue` of `transport` whenever `notifier` fires.
    pub fn add_queue_notifier(
        &mut self,
        transport: SharedTransport,
        queue: u32,
        notifier: EventFd,
    ) -> Result<()> {
        let fd = notifier.as_raw_fd();
        self.add(fd, Source::Queue(transport, queue, notifier))
    }

    /// Polls every backend fd of `transport`'s device.
    pub fn add_device(&mut self, transport: &SharedTransport) -> Result<()> {
        let fds = lock(transport).device_event_fds();
        for (index, fd) in fds.into_iter().enumerate() {
            self.add(fd, Source::Device(Arc::clone(transport), index))?;
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` (-1: forever) and serves what is ready;
    /// `Ok(false)` once the stop eventfd fired.
    pub fn run_once(&mut self, timeout_ms: i32) -> Result<bool> {
        let mut events = [EpollEvent::default(); EVENTS_PER_WAIT];
        let n = match self.epoll.wait(timeout_ms, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(Error::Io("epoll_wait", e)),
        };
        for event in &events[..n] {
            if event.data() == STOP_TOKEN {
                return Ok(false);
            }
            match self.sources.get(event.data() as usize) {
                Some(Source::Queue(transport, queue, notifier)) => {
                    // The count does not matter: the queue is served whole.
                    let _ = notifier.read();
                    lock(transport).notify(*queue);
                }
                Some(Source::Device(transport, index)) => lock(transport).device_event(*index),
                None => log::error!("event loop: unknown token {}", event.data()),
            }
        }
        Ok(true)
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
    use crate::devices::BusDevice;
    use std::time::{Duration, Instant};

    fn wr(t: &SharedTransport, offset: u64, value: u32) {
        lock(t).write(offset, &value.to_le_bytes());
    }

    fn ready_rng(driver: &TestDriver) -> SharedTransport {
        let irq = EventFd::new(EFD_NONBLOCK).unwrap();
        let t = Arc::new(Mutex::new(MmioTransport::new(
            Box::new(Rng::new()),
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
    }
}
