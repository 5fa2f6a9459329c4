//! Building a [`Machine`]: KVM, VM and memory, legacy devices, kernel and
//! boot structures, vCPUs, in that order.

use std::path::Path;
use std::sync::{Arc, Mutex};

use linux_loader::cmdline::Cmdline;
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::{Error, Machine, Result};
use crate::arch::layout::{CMDLINE_MAX_SIZE, MMIO_DEVICES_START, MMIO_DEVICE_SIZE};
use crate::config::VmConfig;
use crate::devices::legacy::{
    serial::EventFdTrigger, DebugExit, SerialDevice, COM1_IRQ, COM1_LEN, COM1_PORT,
    DEBUG_EXIT_PORT, I8042, I8042_LEN, I8042_PORT,
};
use crate::devices::virtio::blk::Block;
use crate::devices::virtio::event_loop::EventLoop;
use crate::devices::virtio::mmio::{reg, MmioTransport};
use crate::devices::virtio::rng::Rng;
use crate::devices::virtio::vsock::{UnixBackend, Vsock};
use crate::devices::virtio::VirtioDevice;
use crate::devices::Bus;
use crate::probe::{open_kvm, DEFAULT_KVM_DEVICE};
use crate::seccomp::Filters;
use crate::stop::StopSender;
use crate::vstate::{Vcpu, Vm};

/// IRQ of the first virtio-mmio device (COM1 has 4).
pub const FIRST_VIRTIO_IRQ: u32 = 5;

impl Machine {
    /// Builds the VM described by `config` on `/dev/kvm`.
    pub fn build(config: &VmConfig) -> Result<Self> {
        Self::build_on(config, Path::new(DEFAULT_KVM_DEVICE))
    }

    /// Builds the VM described by `config` on the KVM device `kvm_dev`.
    pub fn build_on(config: &VmConfig, kvm_dev: &Path) -> Result<Self> {
        config.validate()?;
        let kvm = open_kvm(kvm_dev)?;
        let mem_size = config.memory_bytes();
        let vm = Vm::create(&kvm, mem_size)?;
        let (stop_tx, stop_rx) = StopSender::channel();
        let io_bus = Arc::new(legacy_bus(&vm, config, &stop_tx)?);
        let mut cmdline = Cmdline::try_from(&config.kernel_cmdline(), CMDLINE_MAX_SIZE)?;
        let mut event_loop =
            EventLoop::new().map_err(|e| Error::Device("event loop", e.to_string()))?;
        let mmio_bus = Arc::new(virtio_bus(&vm, config, &mut cmdline, &mut event_loop)?);
        let boot = crate::boot::load(
            vm.memory(),
            mem_size,
            config.vcpus,
            &config.kernel,
            config.initrd.as_deref(),
            &cmdline,
        )?;
        log::info!(
            "kernel: {:?} image, {} boot protocol",
            boot.kernel.format,
            boot.protocol.name()
        );
        let mut vcpus = Vec::with_capacity(usize::from(config.vcpus));
        for id in 0..config.vcpus {
            let vcpu = Vcpu::create(
                &vm,
                id,
                Arc::clone(&io_bus),
                Arc::clone(&mmio_bus),
                stop_tx.clone(),
            )?;
            let entry = (id == 0).then_some(boot.protocol);
            vcpu.configure(&kvm, config.vcpus, entry)?;
            vcpus.push(vcpu);
        }
        let cmdline = cmdline
            .as_cstring()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        let seccomp = if config.seccomp {
            Some(Filters::new()?)
        } else {
            log::warn!("seccomp is off: VMM threads run without syscall filters");
            None
        };
        Ok(Machine {
            vm: Arc::new(vm),
            vcpus,
            stop_rx,
            boot,
            cmdline,
            event_loop,
            seccomp,
            _kvm: kvm,
        })
    }
}

/// The MMIO bus: one virtio-mmio window per device, from
/// [`MMIO_DEVICES_START`] with IRQs from [`FIRST_VIRTIO_IRQ`], each declared
/// on the kernel command line as `virtio_mmio.device=4K@ADDR:IRQ`. Queue
/// notifications and device backends are served by `event_loop`.
fn virtio_bus(
    vm: &Vm,
    config: &VmConfig,
    cmdline: &mut Cmdline,
    event_loop: &mut EventLoop,
) -> Result<Bus> {
    let mut devices: Vec<(&'static str, Box<dyn VirtioDevice>)> = Vec::new();
    if config.rng {
        devices.push(("virtio-rng", Box::new(Rng::new())));
    }
    for disk in &config.disks {
        let block = Block::new(disk).map_err(|e| Error::Device("virtio-blk", e.to_string()))?;
        devices.push(("virtio-blk", Box::new(block)));
    }
    if let Some(vsock) = &config.vsock {
        let vsock_err =
            |e: crate::devices::virtio::vsock::Error| Error::Device("virtio-vsock", e.to_string());
        let backend = UnixBackend::bind(&vsock.uds).map_err(vsock_err)?;
        let device = Vsock::new(vsock.cid, Box::new(backend)).map_err(vsock_err)?;
        devices.push(("virtio-vsock", Box::new(device)));
    }
    let mut bus = Bus::new();
    for ((name, device), index) in devices.into_iter().zip(0u32..) {
        let base = MMIO_DEVICES_START + u64::from(index) * MMIO_DEVICE_SIZE;
        let irq = FIRST_VIRTIO_IRQ + index;
        let interrupt =
            EventFd::new(EFD_NONBLOCK).map_err(|e| Error::Device(name, e.to_string()))?;
        vm.register_irqfd(&interrupt, irq)?;
        let transport = MmioTransport::new(device, base, vm.memory().clone(), interrupt);
        let queues = transport.queue_count();
        let transport = Arc::new(Mutex::new(transport));
        let loop_err =
            |e: crate::devices::virtio::event_loop::Error| Error::Device(name, e.to_string());
        for queue in 0..queues as u32 {
            add_queue_notifier(vm, event_loop, &transport, base, queue).map_err(loop_err)?;
        }
        event_loop.add_device(&transport).map_err(loop_err)?;
        bus.insert(base, MMIO_DEVICE_SIZE, transport)
            .map_err(|e| Error::Device(name, e.to_string()))?;
        cmdline.add_virtio_mmio_device(MMIO_DEVICE_SIZE, GuestAddress(base), irq, None)?;
    }
    Ok(bus)
}

/// Registers an ioeventfd for QueueNotify = `queue` of the window at
/// `base` and has `event_loop` serve it. If KVM refuses the ioeventfd the
/// write keeps exiting to the VMM and is served on the vCPU thread (logged).
fn add_queue_notifier(
    vm: &Vm,
    event_loop: &mut EventLoop,
    transport: &Arc<Mutex<MmioTransport>>,
    base: u64,
    queue: u32,
) -> std::result::Result<(), crate::devices::virtio::event_loop::Error> {
    use crate::devices::virtio::event_loop::Error as LoopError;
    let notifier = EventFd::new(EFD_NONBLOCK).map_err(|e| LoopError::Io("eventfd", e))?;
    match vm.register_ioevent(&notifier, base + reg::QUEUE_NOTIFY, queue) {
        Ok(()) => event_loop.add_queue_notifier(Arc::clone(transport), queue, notifier),
        Err(e) => {
            log::warn!(
                "virtio-mmio at {base:#x}: no ioeventfd for queue {queue} ({e}); \
                 notifies are served on the vCPU thread"
            );
            Ok(())
        }
    }
}

/// The port I/O bus: COM1 (interrupt by irqfd), the i8042 reset line and
/// the debug-exit port.
fn legacy_bus(vm: &Vm, config: &VmConfig, stop: &StopSender) -> Result<Bus> {
    let device_err = |name| move |e: std::io::Error| Error::Device(name, e.to_string());
    let out = config.serial.open().map_err(device_err("serial"))?;
    let serial = SerialDevice::new(EventFdTrigger::new().map_err(device_err("serial"))?, out);
    vm.register_irqfd(serial.interrupt_fd(), COM1_IRQ)?;
    let bus_err = |name| move |e: crate::devices::bus::Error| Error::Device(name, e.to_string());
    let mut bus = Bus::new();
    bus.insert(COM1_PORT, COM1_LEN, Arc::new(Mutex::new(serial)))
        .map_err(bus_err("serial"))?;
    bus.insert(
        I8042_PORT,
        I8042_LEN,
        Arc::new(Mutex::new(I8042::new(stop.clone()))),
    )
    .map_err(bus_err("i8042"))?;
    bus.insert(
        DEBUG_EXIT_PORT,
        1,
        Arc::new(Mutex::new(DebugExit::new(stop.clone()))),
    )
    .map_err(bus_err("debug-exit"))?;
    Ok(bus)
}
