//! The VM's configuration: what `podvm-vmm run` takes as flags or as a
//! JSON file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::devices::legacy::SerialOutput;

/// Default kernel command line: serial console, reset through the i8042
/// (which stops the VM), no PCI, and an i8042 driver that does not probe.
pub const DEFAULT_CMDLINE: &str =
    "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd";
/// Default guest memory.
pub const DEFAULT_MEMORY_MIB: u64 = 128;
/// Smallest guest memory accepted.
pub const MIN_MEMORY_MIB: u64 = 2;
/// Largest guest memory accepted (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// Most vCPUs accepted (APIC IDs are 8 bits; kept well below).
pub const MAX_VCPUS: u8 = 64;

/// Errors in a VM configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The JSON file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The JSON file is not a valid configuration.
    #[error("invalid configuration in {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything needed to build and boot one VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// Kernel image: vmlinux ELF or bzImage.
    pub kernel: PathBuf,
    /// Optional initrd / initramfs.
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// Kernel command line (device arguments are appended to it).
    #[serde(default = "default_cmdline")]
    pub cmdline: String,
    /// Guest memory in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Number of vCPUs.
    #[serde(default = "default_vcpus")]
    pub vcpus: u8,
    /// Where the serial console goes: `stdout`, `off` or `file:PATH`.
    #[serde(
        default,
        serialize_with = "serialize_display",
        deserialize_with = "deserialize_serial"
    )]
    pub serial: SerialOutput,
    /// Whether the guest gets a virtio-rng device.
    #[serde(default)]
    pub rng: bool,
}

fn default_cmdline() -> String {
    DEFAULT_CMDLINE.into()
}

fn default_memory_mib() -> u64 {
    DEFAULT_MEMORY_MIB
}

fn default_vcpus() -> u8 {
    1
}

fn serialize_display<S: Serializer>(
    value: &SerialOutput,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn deserialize_serial<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<SerialOutput, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

impl VmConfig {
    /// A configuration with defaults for everything but the kernel.
    pub fn new(kernel: PathBuf) -> Self {
        Self {
            kernel,
            initrd: None,
            cmdline: default_cmdline(),
            memory_mib: DEFAULT_MEMORY_MIB,
            vcpus: 1,
            serial: SerialOutput::Stdout,
            rng: false,
        }
    }

    /// Reads a JSON configuration file.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&self.memory_mib) {
            return Err(Error::Invalid(format!(
                "memory_mib {} is not in {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB}",
                self.memory_mib
            )));
        }
        if !(1..=MAX_VCPUS).contains(&self.vcpus) {
            return Err(Error::Invalid(format!(
                "vcpus {} is not in 1..={MAX_VCPUS}",
                self.vcpus
            )));
        }
        Ok(())
    }

    /// The command line the kernel gets (before device arguments): the
    /// configured one with `reboot=k` appended unless its last `reboot=`
    /// already is `k`. The last `reboot=` wins in Linux, so a guest image
    /// built with `reboot=t` still resets through the i8042, which this VMM
    /// sees as a requested stop (a triple fault counts as a crash).
    pub fn kernel_cmdline(&self) -> String {
        let last_reboot = self
            .cmdline
            .split_ascii_whitespace()
            .filter_map(|word| word.strip_prefix("reboot="))
            .last();
        if last_reboot == Some("k") {
            self.cmdline.clone()
        } else if self.cmdline.trim().is_empty() {
            "reboot=k".into()
        } else {
            format!("{} reboot=k", self.cmdline.trim_end())
        }
    }

    /// Guest memory in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fills_defaults_and_parses_serial() -> std::result::Result<(), Box<dyn std::error::Error>>
    {
        let config: VmConfig =
            serde_json::from_str(r#"{"kernel": "/k", "serial": "file:/tmp/s"}"#)?;
        assert_eq!(config.memory_mib, DEFAULT_MEMORY_MIB);
        assert_eq!(config.vcpus, 1);
        assert_eq!(config.cmdline, DEFAULT_CMDLINE);
        assert_eq!(config.serial, SerialOutput::File("/tmp/s".into()));
        config.validate()?;
        let back = serde_json::to_value(&config)?;
        assert_eq!(back["serial"], "file:/tmp/s");
        Ok(())
    }

    #[test]
    fn unknown_fields_bad_serial_and_ranges_are_refused() {
        assert!(serde_json::from_str::<VmConfig>(r#"{"kernel": "/k", "mem": 1}"#).is_err());
        assert!(serde_json::from_str::<VmConfig>(r#"{"kernel": "/k", "serial": "tty"}"#).is_err());
        let mut config = VmConfig::new("/k".into());
        config.vcpus = 0;
        assert!(config.validate().is_err());
        config.vcpus = 2;
        config.memory_mib = 1;
        assert!(config.validate().is_err());
        config.memory_mib = 64;
        assert!(config.validate().is_ok());
        assert_eq!(config.memory_bytes(), 64 << 20);
    }

    #[test]
    fn reboot_k_is_appended_unless_it_already_wins() {
        let mut config = VmConfig::new("/k".into());
        assert_eq!(config.kernel_cmdline(), DEFAULT_CMDLINE);
        config.cmdline = "console=ttyS0 reboot=t panic=-1".into();
        assert_eq!(
            config.kernel_cmdline(),
            "console=ttyS0 reboot=t panic=-1 reboot=k"
        );
        config.cmdline = "reboot=k reboot=t ".into();
        assert_eq!(config.kernel_cmdline(), "reboot=k reboot=t reboot=k");
        config.cmdline = String::new();
        assert_eq!(config.kernel_cmdline(), "reboot=k");
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = VmConfig::from_json_file(Path::new("/nonexistent/podvm.json"));
        assert!(matches!(err, Err(Error::Read { .. })));
    }
}
