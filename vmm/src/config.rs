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
/// Most virtio devices: one IOAPIC pin each, from 5 to 23.
pub const MAX_VIRTIO_DEVICES: usize = 19;
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
    /// virtio-blk disks, in the order the guest sees them (vda, vdb, ...).
    #[serde(default)]
    pub disks: Vec<DiskConfig>,
    /// The virtio-vsock device, if any.
    #[serde(default)]
    pub vsock: Option<VsockConfig>,
    /// Whether each VMM thread runs under its seccomp filter
    /// (see [`crate::seccomp`]); on unless set to `false`.
    #[serde(default = "default_seccomp")]
    pub seccomp: bool,
}

/// The virtio-vsock device: `--vsock uds=PATH[,cid=N]` or the JSON object
/// `{"uds": PATH, "cid": N}`. The host connects to `uds` and writes
/// `CONNECT <port>\n`; guest connections to port P go to `<uds>_P`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VsockConfig {
    /// The listening Unix socket (must not exist yet).
    pub uds: PathBuf,
    /// The guest's CID.
    #[serde(default = "default_guest_cid")]
    pub cid: u64,
}

/// The guest CID unless configured otherwise.
pub const DEFAULT_GUEST_CID: u64 = 3;

fn default_guest_cid() -> u64 {
    DEFAULT_GUEST_CID
}

impl std::str::FromStr for VsockConfig {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |why: &str| Error::Invalid(format!("--vsock {text:?}: {why}"));
        let (mut uds, mut cid) = (None, DEFAULT_GUEST_CID);
        for item in text.split(',') {
            match item.split_once('=') {
                Some(("uds", path)) if !path.is_empty() => uds = Some(PathBuf::from(path)),
                Some(("cid", n)) => cid = n.parse().map_err(|_| invalid("cid must be a number"))?,
                _ => return Err(invalid("expected uds=PATH[,cid=N]")),
            }
        }
        let uds = uds.ok_or_else(|| invalid("uds= is required"))?;
        Ok(Self { uds, cid })
    }
}

/// One virtio-blk disk: `--disk path=P,ro=true|false,serial=S` or the
/// JSON object `{"path": P, "ro": bool, "serial": S}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    /// The backing file.
    pub path: PathBuf,
    /// Read-only: the guest sees VIRTIO_BLK_F_RO and writes fail.
    #[serde(default)]
    pub ro: bool,
    /// The serial the guest reads (GET_ID, `/sys/block/vdX/serial`).
    #[serde(default)]
    pub serial: Option<String>,
}

impl std::str::FromStr for DiskConfig {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = |why: &str| Error::Invalid(format!("--disk {text:?}: {why}"));
        let (mut path, mut ro, mut serial) = (None, false, None);
        for item in text.split(',') {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| invalid("expected key=value items"))?;
            match key {
                "path" if !value.is_empty() => path = Some(PathBuf::from(value)),
                "ro" => {
                    ro = value
                        .parse()
                        .map_err(|_| invalid("ro must be true or false"))?
                }
                "serial" => serial = Some(value.to_string()),
                _ => return Err(invalid(&format!("unknown or empty {key:?}"))),
            }
        }
        let path = path.ok_or_else(|| invalid("path= is required"))?;
        Ok(Self { path, ro, serial })
    }
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

fn default_seccomp() -> bool {
    true
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
            disks: Vec::new(),
            vsock: None,
            seccomp: true,
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
        if let Some(vsock) = &self.vsock {
            // 0..=2 are reserved (hypervisor, local, host); u32::MAX is "any".
            if !(3..u64::from(u32::MAX)).contains(&vsock.cid) {
                return Err(Error::Invalid(format!(
                    "vsock cid {} is reserved",
                    vsock.cid
                )));
            }
        }
        let devices = usize::from(self.rng) + self.disks.len() + usize::from(self.vsock.is_some());
        if devices > MAX_VIRTIO_DEVICES {
            return Err(Error::Invalid(format!(
                "{devices} virtio devices; at most {MAX_VIRTIO_DEVICES} (IOAPIC pins 5..=23)"
            )));
        }
        for disk in &self.disks {
            if let Some(serial) = &disk.serial {
                crate::devices::virtio::blk::validate_serial(serial)
                    .map_err(|e| Error::Invalid(e.to_string()))?;
            }
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
            .rev()
            .find_map(|word| word.strip_prefix("reboot="));
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
    fn disks_parse_from_flags_and_json() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let disk: DiskConfig = "path=/img/a.erofs,ro=true,serial=img-a".parse()?;
        assert_eq!(
            disk,
            DiskConfig {
                path: "/img/a.erofs".into(),
                ro: true,
                serial: Some("img-a".into()),
            }
        );
        let rw: DiskConfig = "path=/rw.img".parse()?;
        assert!(!rw.ro && rw.serial.is_none());
        for bad in ["ro=true", "path=", "path=/a,ro=yes", "path=/a,size=3", "/a"] {
            assert!(bad.parse::<DiskConfig>().is_err(), "{bad}");
        }
        let config: VmConfig = serde_json::from_str(
            r#"{"kernel": "/k", "disks": [{"path": "/a", "ro": true, "serial": "s"}, {"path": "/b"}]}"#,
        )?;
        assert_eq!(config.disks[0], disk_with("/a", true, Some("s")));
        assert_eq!(config.disks[1], disk_with("/b", false, None));
        let mut config = config;
        config.disks[1].serial = Some("has space".into());
        assert!(config.validate().is_err());
        config.disks = vec![disk_with("/a", false, None); MAX_VIRTIO_DEVICES + 1];
        assert!(config.validate().is_err());
        Ok(())
    }

    #[test]
    fn vsock_parses_from_flags_and_json() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let vsock: VsockConfig = "uds=/run/vm.sock".parse()?;
        assert_eq!((vsock.uds.to_str(), vsock.cid), (Some("/run/vm.sock"), 3));
        let vsock: VsockConfig = "uds=/v,cid=42".parse()?;
        assert_eq!(vsock.cid, 42);
        for bad in ["cid=3", "uds=", "uds=/v,cid=x", "uds=/v,port=1"] {
            assert!(bad.parse::<VsockConfig>().is_err(), "{bad}");
        }
        let mut config: VmConfig =
            serde_json::from_str(r#"{"kernel": "/k", "vsock": {"uds": "/v"}}"#)?;
        assert_eq!(config.vsock.as_ref().map(|v| v.cid), Some(3));
        config.validate()?;
        for cid in [2, u64::from(u32::MAX)] {
            config.vsock = Some(VsockConfig {
                uds: "/v".into(),
                cid,
            });
            assert!(config.validate().is_err(), "cid {cid}");
        }
        Ok(())
    }

    fn disk_with(path: &str, ro: bool, serial: Option<&str>) -> DiskConfig {
        DiskConfig {
            path: path.into(),
            ro,
            serial: serial.map(Into::into),
        }
    }

    #[test]
    fn seccomp_is_on_unless_turned_off() -> std::result::Result<(), Box<dyn std::error::Error>> {
        assert!(VmConfig::new("/k".into()).seccomp);
        let config: VmConfig = serde_json::from_str(r#"{"kernel": "/k"}"#)?;
        assert!(config.seccomp);
        let config: VmConfig = serde_json::from_str(r#"{"kernel": "/k", "seccomp": false}"#)?;
        assert!(!config.seccomp);
        assert!(serde_json::from_str::<VmConfig>(r#"{"kernel": "/k", "seccomp": "no"}"#).is_err());
        Ok(())
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let err = VmConfig::from_json_file(Path::new("/nonexistent/podvm.json"));
        assert!(matches!(err, Err(Error::Read { .. })));
    }
}
