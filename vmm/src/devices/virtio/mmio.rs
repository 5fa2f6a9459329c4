//! The virtio-mmio transport (virtio 1.2, 4.2.2; register offsets from
//! include/uapi/linux/virtio_mmio.h), version 2 only.
//!
//! It owns the device's queues and the status/feature handshake. Queue
//! notifications normally arrive through KVM ioeventfds on the device
//! event loop ([`MmioTransport::notify`]); a QueueNotify write that still
//! exits to the VMM (no ioeventfd) is served on the vCPU thread. The
//! interrupt is an eventfd the VMM registers as a KVM irqfd. A device
//! that reports a broken queue gets DEVICE_NEEDS_RESET and is ignored
//! until the driver resets it. When the driver sets DRIVER_OK (or FAILED)
//! the transport logs it, naming the device type, window and features
//! (see [`super::device_status`]).

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::device_status::{device_type_name, driver_failed_message, driver_ok_message};
use super::{VirtioDevice, VIRTIO_F_VERSION_1};
use crate::devices::BusDevice;

/// `VIRTIO_MMIO_MAGIC_VALUE`: "virt".
pub const MAGIC_VALUE: u32 = 0x7472_6976;
/// Transport version 2 (modern).
pub const MMIO_VERSION: u32 = 2;
/// Vendor ID reported: "PDVM".
pub const VENDOR_ID: u32 = 0x4d56_4450;

/// Register offsets.
pub mod reg {
    pub const MAGIC_VALUE: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_AVAIL_LOW: u64 = 0x090;
    pub const QUEUE_AVAIL_HIGH: u64 = 0x094;
    pub const QUEUE_USED_LOW: u64 = 0x0a0;
    pub const QUEUE_USED_HIGH: u64 = 0x0a4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;
}

/// Device status bits (include/uapi/linux/virtio_config.h).
pub mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const DEVICE_NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// Interrupt status: a used ring changed (`VIRTIO_MMIO_INT_VRING`).
pub const INT_VRING: u32 = 1;
/// Available-ring flag: the driver asks not to be interrupted when the
/// device uses buffers of this queue (virtio 1.2, 2.7.7).
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Interrupt status: configuration changed (`VIRTIO_MMIO_INT_CONFIG`).
pub const INT_CONFIG: u32 = 2;

/// One virtio device behind an MMIO window.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    /// Guest-physical address of the window, for log lines.
    base: u64,
    mem: GuestMemoryMmap,
    interrupt: EventFd,
    queues: Vec<Queue>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
    config_generation: u32,
    broken: bool,
}

impl MmioTransport {
    /// Wraps `device`, whose window starts at guest-physical `base`;
    /// `interrupt` is signalled to interrupt the driver.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        base: u64,
        mem: GuestMemoryMmap,
        interrupt: EventFd,
    ) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .filter_map(|max| Queue::new(*max).ok())
            .collect();
        Self {
            device,
            base,
            mem,
            interrupt,
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            config_generation: 0,
            broken: false,
        }
    }

    /// The interrupt eventfd, to register as an irqfd.
    pub fn interrupt_fd(&self) -> &EventFd {
        &self.interrupt
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The features the driver negotiated (valid once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// `virtio-blk at 0xd0000000`: the device type and window, for logs.
    fn label(&self) -> String {
        format!(
            "{} at {:#x}",
            device_type_name(self.device.device_type()),
            self.base
        )
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn raise(&mut self, bits: u32) {
        log::trace!("virtio-mmio: {}: interrupt {bits:#x}", self.label());
        self.interrupt_status |= bits;
        if let Err(e) = self.interrupt.write(1) {
            log::error!("virtio-mmio: cannot signal the interrupt: {e}");
        }
    }

    fn reset(&mut self) {
        self.status = 0;
        self.driver_features = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        self.broken = false;
        for queue in &mut self.queues {
            queue.reset();
        }
        self.device.reset();
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let new_bits = value & !self.status;
        if new_bits & status::FEATURES_OK != 0 {
            let offered = self.device.avail_features();
            let ok = self.driver_features & !offered == 0
                && self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0;
            if !ok {
                log::warn!(
                    "virtio-mmio: {}: driver features {:#x} not acceptable (offered {offered:#x})",
                    self.label(),
                    self.driver_features
                );
                self.status = value & !status::FEATURES_OK;
                return;
            }
        }
        if new_bits & status::DRIVER_OK != 0 {
            let mem = &self.mem;
            if let Some(bad) = self
                .queues
                .iter()
                .position(|q| q.ready() && !q.is_valid(mem))
            {
                log::warn!(
                    "virtio-mmio: {}: queue {bad} lies outside guest memory",
                    self.label()
                );
                self.status = value | status::DEVICE_NEEDS_RESET;
                self.broken = true;
                return;
            }
        }
        self.status = value;
        let id = self.device.device_type();
        if new_bits & status::DRIVER_OK != 0 {
            log::info!(
                "{}",
                driver_ok_message(id, self.base, self.driver_features, value)
            );
        }
        if new_bits & status::FAILED != 0 {
            log::warn!("{}", driver_failed_message(id, self.base, value));
        }
    }

    /// Whether the driver finished setup and has not broken the device.
    fn active(&self) -> bool {
        !self.broken && self.status & status::DRIVER_OK != 0
    }

    /// The number of queues the device has.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// The device's backend file descriptors (see [`VirtioDevice::event_fds`]).
    pub fn device_event_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.device.event_fds()
    }

    /// Serves queue `index`: a QueueNotify write, or its ioeventfd fired.
    pub fn notify(&mut self, index: u32) {
        if !self.active() {
            return;
        }
        let Some(queue) = self.queues.get(index as usize) else {
            log::debug!("virtio-mmio: notify for missing queue {index}");
            return;
        };
        if !queue.ready() {
            return;
        }
        log::trace!("virtio-mmio: {}: queue {index} notified", self.label());
        let used_before = self.used_indexes();
        let result = self
            .device
            .process_queue(index as usize, &mut self.queues, &self.mem);
        self.complete(result, &used_before);
    }

    /// Lets the device handle readiness of its backend fd `index`.
    pub fn device_event(&mut self, index: usize) {
        let used_before = self.used_indexes();
        let result = if self.active() {
            self.device.handle_event(index, &mut self.queues, &self.mem)
        } else {
            self.device.handle_event(index, &mut [], &self.mem)
        };
        self.complete(result, &used_before);
    }

    /// Each queue's next used index, to tell afterwards which ones a
    /// device call used.
    fn used_indexes(&self) -> Vec<u16> {
        self.queues.iter().map(|q| q.next_used()).collect()
    }

    /// Whether a queue the device just used (its next used index moved on
    /// from `used_before`) lets the driver be interrupted: not when every
    /// such queue's available ring carries `VRING_AVAIL_F_NO_INTERRUPT`.
    fn interrupt_wanted(&self, used_before: &[u16]) -> bool {
        self.queues
            .iter()
            .zip(used_before)
            .filter(|(q, before)| q.next_used() != **before)
            .any(|(q, _)| {
                self.mem
                    .read_obj::<u16>(GuestAddress(q.avail_ring()))
                    .map_or(true, |flags| flags & VRING_AVAIL_F_NO_INTERRUPT == 0)
            })
    }

    fn complete(&mut self, result: super::Result<bool>, used_before: &[u16]) {
        match result {
            Ok(true) if self.interrupt_wanted(used_before) => self.raise(INT_VRING),
            Ok(_) => {}
            Err(e) => {
                log::warn!(
                    "virtio-mmio: {}: device broken by the driver: {e}",
                    self.label()
                );
                self.broken = true;
                self.status |= status::DEVICE_NEEDS_RESET;
                self.raise(INT_CONFIG);
            }
        }
    }

    fn read_register(&mut self, offset: u64) -> u32 {
        let features = self.device.avail_features();
        match offset {
            reg::MAGIC_VALUE => MAGIC_VALUE,
            reg::VERSION => MMIO_VERSION,
            reg::DEVICE_ID => self.device.device_type(),
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self.selected_queue().map_or(0, |q| q.max_size().into()),
            reg::QUEUE_READY => self.selected_queue().map_or(0, |q| q.ready().into()),
            reg::INTERRUPT_STATUS => self.interrupt_status,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => self.config_generation,
            _ => 0,
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        let configuring = self.status & status::DRIVER_OK == 0;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES if self.status & status::FEATURES_OK == 0 => {
                match self.driver_features_sel {
                    0 => {
                        self.driver_features =
                            (self.driver_features & !0xffff_ffff) | u64::from(value)
                    }
                    1 => {
                        self.driver_features =
                            (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
                    }
                    _ => {}
                }
            }
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::QUEUE_NOTIFY => self.notify(value),
            reg::INTERRUPT_ACK => {
                log::trace!("virtio-mmio: {}: interrupt ack {value:#x}", self.label());
                self.interrupt_status &= !value;
            }
            reg::STATUS => self.set_status(value),
            reg::QUEUE_NUM if configuring => {
                if let Some(q) = self.selected_queue() {
                    // A size that is zero, too large or not a power of two
                    // is refused by the queue and leaves it unusable.
                    q.set_size(value as u16);
                }
            }
            reg::QUEUE_READY if configuring => {
                if let Some(q) = self.selected_queue() {
                    q.set_ready(value == 1);
                }
            }
            reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_AVAIL_LOW
            | reg::QUEUE_AVAIL_HIGH
            | reg::QUEUE_USED_LOW
            | reg::QUEUE_USED_HIGH
                if configuring =>
            {
                let high = offset & 4 != 0;
                let (lo, hi) = if high {
                    (None, Some(value))
                } else {
                    (Some(value), None)
                };
                if let Some(q) = self.selected_queue() {
                    match offset & !4 {
                        reg::QUEUE_DESC_LOW => q.set_desc_table_address(lo, hi),
                        reg::QUEUE_AVAIL_LOW => q.set_avail_ring_address(lo, hi),
                        _ => q.set_used_ring_address(lo, hi),
                    }
                }
            }
            _ => log::debug!("virtio-mmio: ignored write of {value:#x} at {offset:#x}"),
        }
    }
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= reg::CONFIG {
            self.device.read_config(offset - reg::CONFIG, data);
        } else if data.len() == 4 && offset % 4 == 0 {
            data.copy_from_slice(&self.read_register(offset).to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= reg::CONFIG {
            self.device.write_config(offset - reg::CONFIG, data);
            self.config_generation = self.config_generation.wrapping_add(1);
        } else if let (true, Ok(bytes)) = (offset % 4 == 0, <[u8; 4]>::try_from(data)) {
            self.write_register(offset, u32::from_le_bytes(bytes));
        } else {
            log::debug!(
                "virtio-mmio: ignored {}-byte write at {offset:#x}",
                data.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::rng::Rng;
    use crate::devices::virtio::test_driver::{
        TestDriver, AVAIL_RING, DATA, DESC_TABLE, F_WRITE, MEM_SIZE, USED_RING,
    };
    use crate::devices::virtio::VIRTIO_ID_RNG;
    use std::sync::Mutex;
    use vmm_sys_util::eventfd::EFD_NONBLOCK;

    /// The window address the test transports claim to sit at.
    const TEST_BASE: u64 = 0xd000_0000;

    /// Log lines recorded by [`CaptureLogger`] (all tests, all levels up to info).
    static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Records log lines so tests can check what the transport logs.
    struct CaptureLogger;

    impl log::Log for CaptureLogger {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Info
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                let mut lines = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(format!("{} {}", record.level(), record.args()));
            }
        }
        fn flush(&self) {}
    }

    /// Installs [`CaptureLogger`] (once) and returns the captured lines
    /// that contain `needle` so far.
    fn captured(needle: &str) -> Vec<String> {
        static LOGGER: CaptureLogger = CaptureLogger;
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
        let lines = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    fn transport(driver: &TestDriver) -> MmioTransport {
        let irq = EventFd::new(EFD_NONBLOCK).expect("eventfd");
        MmioTransport::new(Box::new(Rng::new()), TEST_BASE, driver.mem.clone(), irq)
    }

    fn rd(t: &mut MmioTransport, offset: u64) -> u32 {
        let mut data = [0u8; 4];
        t.read(offset, &mut data);
        u32::from_le_bytes(data)
    }

    fn wr(t: &mut MmioTransport, offset: u64, value: u32) {
        t.write(offset, &value.to_le_bytes());
    }

    /// The driver side of device initialisation (virtio 1.2, 3.1.1).
    fn handshake(t: &mut MmioTransport, size: u16, desc: u64) {
        wr(t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        wr(t, reg::DRIVER_FEATURES_SEL, 1);
        wr(t, reg::DRIVER_FEATURES, 1); // VIRTIO_F_VERSION_1 = bit 32.
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        wr(t, reg::STATUS, s);
        assert_ne!(rd(t, reg::STATUS) & status::FEATURES_OK, 0);
        wr(t, reg::QUEUE_SEL, 0);
        wr(t, reg::QUEUE_NUM, size.into());
        wr(t, reg::QUEUE_DESC_LOW, desc as u32);
        wr(t, reg::QUEUE_DESC_HIGH, (desc >> 32) as u32);
        wr(t, reg::QUEUE_AVAIL_LOW, AVAIL_RING as u32);
        wr(t, reg::QUEUE_USED_LOW, USED_RING as u32);
        wr(t, reg::QUEUE_READY, 1);
        wr(t, reg::STATUS, s | status::DRIVER_OK);
    }

    #[test]
    fn identifies_as_a_modern_virtio_device() {
        let driver = TestDriver::new(8);
        let mut t = transport(&driver);
        assert_eq!(rd(&mut t, reg::MAGIC_VALUE), MAGIC_VALUE);
        assert_eq!(rd(&mut t, reg::VERSION), 2);
        assert_eq!(rd(&mut t, reg::DEVICE_ID), VIRTIO_ID_RNG);
        wr(&mut t, reg::DEVICE_FEATURES_SEL, 1);
        assert_eq!(rd(&mut t, reg::DEVICE_FEATURES), 1, "VERSION_1");
        assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 256);
        wr(&mut t, reg::QUEUE_SEL, 7);
        assert_eq!(rd(&mut t, reg::QUEUE_NUM_MAX), 0, "no such queue");
        let mut odd = [0xffu8; 2];
        t.read(reg::MAGIC_VALUE, &mut odd);
        assert_eq!(odd, [0, 0], "only 32-bit register reads");
    }

    #[test]
    fn notify_serves_the_queue_and_interrupts() {
        let mut driver = TestDriver::new(8);
        let mut t = transport(&driver);
        handshake(&mut t, 8, DESC_TABLE);
        assert_eq!(t.status() & status::DEVICE_NEEDS_RESET, 0);
        driver.add_chain(0, &[(DATA, 16, F_WRITE, 0)]);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 1);
        assert_eq!(driver.used(0), (0, 16));
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), INT_VRING);
        assert_eq!(t.interrupt_fd().read().expect("interrupt"), 1);
        wr(&mut t, reg::INTERRUPT_ACK, INT_VRING);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), 0);
        wr(&mut t, reg::QUEUE_NOTIFY, 5);
        wr(&mut t, reg::STATUS, 0);
        assert_eq!(rd(&mut t, reg::STATUS), 0);
        assert_eq!(rd(&mut t, reg::QUEUE_READY), 0, "reset clears the queues");
    }

    #[test]
    fn a_driver_asking_for_no_interrupt_is_not_interrupted() {
        let mut driver = TestDriver::new(8);
        let mut t = transport(&driver);
        handshake(&mut t, 8, DESC_TABLE);
        driver
            .mem
            .write_obj(VRING_AVAIL_F_NO_INTERRUPT, GuestAddress(AVAIL_RING))
            .expect("avail flags");
        driver.add_chain(0, &[(DATA, 16, F_WRITE, 0)]);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 1, "served");
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), 0, "not interrupted");
        assert!(t.interrupt_fd().read().is_err(), "irqfd not signalled");
        driver
            .mem
            .write_obj(0u16, GuestAddress(AVAIL_RING))
            .expect("avail flags");
        driver.add_chain(1, &[(DATA, 16, F_WRITE, 0)]);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 2);
        assert_eq!(rd(&mut t, reg::INTERRUPT_STATUS), INT_VRING);
        assert_eq!(t.interrupt_fd().read().expect("interrupt"), 1);
    }

    #[test]
    fn unoffered_features_and_legacy_drivers_are_refused() {
        let driver = TestDriver::new(8);
        let mut t = transport(&driver);
        wr(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        wr(&mut t, reg::DRIVER_FEATURES_SEL, 0);
        wr(&mut t, reg::DRIVER_FEATURES, 1 << 5);
        wr(&mut t, reg::STATUS, 0xb);
        assert_eq!(rd(&mut t, reg::STATUS) & status::FEATURES_OK, 0);
        wr(&mut t, reg::STATUS, 0);
        wr(&mut t, reg::STATUS, 0x3);
        wr(&mut t, reg::STATUS, 0xb); // No VERSION_1: a legacy driver.
        assert_eq!(rd(&mut t, reg::STATUS) & status::FEATURES_OK, 0);
    }

    #[test]
    fn queue_outside_memory_needs_reset_and_notifies_are_ignored() {
        let mut driver = TestDriver::new(8);
        let mut t = transport(&driver);
        handshake(&mut t, 8, MEM_SIZE as u64 - 16);
        assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
        driver.add_chain(0, &[(DATA, 16, F_WRITE, 0)]);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 0, "a broken device does nothing");
        wr(&mut t, reg::STATUS, 0);
        handshake(&mut t, 8, DESC_TABLE);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 1, "works again after a reset");
    }

    #[test]
    fn queue_registers_are_frozen_after_driver_ok_and_notify_before_is_ignored() {
        let mut driver = TestDriver::new(8);
        let mut t = transport(&driver);
        driver.add_chain(0, &[(DATA, 16, F_WRITE, 0)]);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 0, "not DRIVER_OK yet");
        handshake(&mut t, 8, DESC_TABLE);
        wr(&mut t, reg::QUEUE_DESC_LOW, 0xdead_0000);
        wr(&mut t, reg::QUEUE_NOTIFY, 0);
        assert_eq!(driver.used_idx(), 1);
    }

    #[test]
    fn driver_ok_and_failed_are_logged_with_device_window_and_features() {
        let _ = captured("");
        let driver = TestDriver::new(8);
        let irq = EventFd::new(EFD_NONBLOCK).expect("eventfd");
        let base = 0xd000_7000;
        let needle = "virtio-rng at 0xd0007000";
        let mut t = MmioTransport::new(Box::new(Rng::new()), base, driver.mem.clone(), irq);
        wr(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
        wr(&mut t, reg::DRIVER_FEATURES_SEL, 1);
        wr(&mut t, reg::DRIVER_FEATURES, 1);
        wr(&mut t, reg::STATUS, 0xb);
        assert!(captured(needle).is_empty(), "nothing before DRIVER_OK");
        wr(&mut t, reg::QUEUE_SEL, 0);
        wr(&mut t, reg::QUEUE_NUM, 8);
        wr(&mut t, reg::QUEUE_DESC_LOW, DESC_TABLE as u32);
        wr(&mut t, reg::QUEUE_AVAIL_LOW, AVAIL_RING as u32);
        wr(&mut t, reg::QUEUE_USED_LOW, USED_RING as u32);
        wr(&mut t, reg::QUEUE_READY, 1);
        wr(&mut t, reg::STATUS, 0xf);
        wr(&mut t, reg::STATUS, 0xf); // Rewriting the same status logs nothing new.
        assert_eq!(t.driver_features(), 1 << VIRTIO_F_VERSION_1);
        assert_eq!(
            captured(needle),
            [
                "INFO virtio-mmio: virtio-rng at 0xd0007000: driver status DRIVER_OK, \
              features 0x100000000 (ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK)"
            ]
        );
        wr(&mut t, reg::STATUS, 0x8f);
        let lines = captured(needle);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("WARN ") && lines[1].contains("driver status FAILED"));
    }

    #[test]
    fn driver_ok_with_a_broken_queue_is_not_logged_as_driver_ok() {
        let _ = captured("");
        let driver = TestDriver::new(8);
        let irq = EventFd::new(EFD_NONBLOCK).expect("eventfd");
        let mut t = MmioTransport::new(Box::new(Rng::new()), 0xd000_8000, driver.mem.clone(), irq);
        handshake(&mut t, 8, MEM_SIZE as u64 - 16);
        let lines = captured("virtio-rng at 0xd0008000");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("lies outside guest memory"), "{lines:?}");
    }
}
