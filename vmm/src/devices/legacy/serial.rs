//! The COM1 serial console: a vm-superio 16550A UART whose output goes to
//! the VMM's stdout or a file, and whose interrupt is an eventfd that KVM
//! injects as IRQ 4 (irqfd). Guest input is not wired up yet.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::devices::BusDevice;

/// Where the guest's serial output goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SerialOutput {
    /// The VMM's standard output.
    #[default]
    Stdout,
    /// A file, created or truncated.
    File(PathBuf),
    /// Discarded.
    Off,
}

impl FromStr for SerialOutput {
    type Err = String;

    /// Parses `stdout`, `off` or `file:PATH`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stdout" => Ok(SerialOutput::Stdout),
            "off" | "none" => Ok(SerialOutput::Off),
            _ => match s.strip_prefix("file:") {
                Some(path) if !path.is_empty() => Ok(SerialOutput::File(path.into())),
                _ => Err(format!(
                    "serial output {s:?} is not `stdout`, `off` or `file:PATH`"
                )),
            },
        }
    }
}

impl fmt::Display for SerialOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialOutput::Stdout => write!(f, "stdout"),
            SerialOutput::File(path) => write!(f, "file:{}", path.display()),
            SerialOutput::Off => write!(f, "off"),
        }
    }
}

impl SerialOutput {
    /// Opens the writer for this output.
    pub fn open(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match self {
            SerialOutput::Stdout => Box::new(io::stdout()),
            SerialOutput::File(path) => Box::new(open_truncated(path)?),
            SerialOutput::Off => Box::new(io::sink()),
        })
    }
}

fn open_truncated(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

/// The UART's interrupt line: an eventfd registered as a KVM irqfd.
pub struct EventFdTrigger(EventFd);

impl EventFdTrigger {
    /// A fresh non-blocking eventfd.
    pub fn new() -> io::Result<Self> {
        EventFd::new(EFD_NONBLOCK).map(Self)
    }

    /// The eventfd, to register with KVM.
    pub fn event_fd(&self) -> &EventFd {
        &self.0
    }
}

impl Trigger for EventFdTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// COM1 on the port I/O bus.
pub struct SerialDevice {
    uart: Serial<EventFdTrigger, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
}

impl SerialDevice {
    /// A UART that writes to `out` and raises `interrupt`.
    pub fn new(interrupt: EventFdTrigger, out: Box<dyn Write + Send>) -> Self {
        Self {
            uart: Serial::new(interrupt, out),
        }
    }

    /// The interrupt eventfd.
    pub fn interrupt_fd(&self) -> &EventFd {
        self.uart.interrupt_evt().event_fd()
    }
}

impl BusDevice for SerialDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        match (u8::try_from(offset), data) {
            (Ok(offset), [byte]) => *byte = self.uart.read(offset),
            (_, data) => data.fill(0xff),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), [byte]) = (u8::try_from(offset), data) {
            if let Err(e) = self.uart.write(offset, *byte) {
                log::warn!("serial: {e:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_written_to_thr_reach_the_output() -> io::Result<()> {
        let out = Shared::default();
        let mut dev = SerialDevice::new(EventFdTrigger::new()?, Box::new(out.clone()));
        for b in b"hi\n" {
            dev.write(0, &[*b]);
        }
        let mut lsr = [0u8];
        dev.read(5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0, "THR empty");
        let mut wide = [0u8; 2];
        dev.read(0, &mut wide);
        assert_eq!(wide, [0xff, 0xff]);
        assert_eq!(out.0.lock().map(|v| v.clone()).ok(), Some(b"hi\n".to_vec()));
        Ok(())
    }

    #[test]
    fn thr_empty_interrupt_fires_the_eventfd() -> io::Result<()> {
        let mut dev = SerialDevice::new(EventFdTrigger::new()?, Box::new(io::sink()));
        dev.write(1, &[0x02]); // IER: THR-empty interrupt.
        dev.write(0, b"x");
        assert!(dev.interrupt_fd().read()? >= 1);
        Ok(())
    }

    #[test]
    fn output_specs_parse_and_print() {
        assert_eq!("stdout".parse(), Ok(SerialOutput::Stdout));
        assert_eq!("off".parse(), Ok(SerialOutput::Off));
        assert_eq!(
            "file:/tmp/x".parse(),
            Ok(SerialOutput::File("/tmp/x".into()))
        );
        assert!("file:".parse::<SerialOutput>().is_err());
        assert!("tty".parse::<SerialOutput>().is_err());
        assert_eq!(SerialOutput::File("/a".into()).to_string(), "file:/a");
    }
}
