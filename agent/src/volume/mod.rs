//! The pod's volumes (`emptyDir` only), the kubelet way: each is set up
//! with the sandbox as `<run>/sandbox/volumes/<name>` (an ext4 scratch
//! disk, a plain directory in host mode, or a tmpfs for `medium: Memory`),
//! bound into the containers that mount it (whole or by a safely resolved
//! `subPath`, [`container`]), measured for `sizeLimit` eviction
//! ([`Volumes::over_limit`]) and unmounted when the sandbox stops. The
//! termination-message file kubelet mounts into every container is here
//! too ([`termination`]).

pub mod container;
pub mod eviction;
mod mount;
pub mod subpath;
pub mod termination;
pub mod usage;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use podvm_proto::{EmptyDirMedium, Volume};

pub use eviction::Eviction;

use crate::console::say;
use crate::mountinfo::{mounts_under, unmount_tree};
use crate::rootfs::RootfsError;

/// Why the pod's volumes could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {0:?}: the name is not a DNS label")]
    BadName(String),
    #[error("volume {0:?} is declared twice")]
    Duplicate(String),
    #[error("volume {volume:?}: {source}")]
    Disk {
        volume: String,
        #[source]
        source: RootfsError,
    },
    #[error("volume {volume:?}: mounting {fstype} on {path}: {source}")]
    Mount {
        volume: String,
        fstype: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("volume {volume:?}: preparing {path}: {source}")]
    Io {
        volume: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} still has mounts below it")]
    Busy(PathBuf),
}

/// What holds a volume's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// The ext4 scratch disk the host attached for it.
    Disk,
    /// A directory of the agent's run directory (host mode).
    Directory,
    /// A tmpfs (`medium: Memory`).
    Memory,
}

/// One volume, ready to be mounted into containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodVolume {
    pub name: String,
    /// Its directory in the agent's mount namespace.
    pub path: PathBuf,
    pub backing: Backing,
    /// `sizeLimit` in bytes.
    pub size_limit: Option<u64>,
}

/// What a container's mounts are made from: the volumes' directories, where
/// `subPath` binds are prepared and where termination-message files go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeRefs {
    /// Each volume's directory, by name.
    pub dirs: BTreeMap<String, PathBuf>,
    /// `<run>/sandbox/volume-subpaths`: one bind per container mount with a
    /// `subPath` (`<volume>/<container>/<mount index>`, as kubelet's
    /// `volume-subpaths`).
    pub subpaths: PathBuf,
    /// `<run>/containers`: each container's termination-message file is
    /// `<containers>/<name>/termination-log`.
    pub containers: PathBuf,
}

/// The pod's volumes.
#[derive(Debug)]
pub struct Volumes {
    root: PathBuf,
    subpaths: PathBuf,
    list: Vec<PodVolume>,
}

/// The block devices' sysfs directory, where disks are found by serial.
pub const SYS_BLOCK: &str = "/sys/block";

/// Kubernetes volume names are DNS labels; anything else must not become a
/// path component.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Volumes {
    /// Sets up `specs` under `<sandbox>/volumes`, finding disks in
    /// [`SYS_BLOCK`]. Nothing stays mounted when it fails.
    pub fn setup(sandbox: &Path, specs: &[Volume]) -> Result<Volumes, VolumeError> {
        Self::setup_with(sandbox, specs, Path::new(SYS_BLOCK))
    }

    /// [`Volumes::setup`] with disks found in `sys_block`.
    pub fn setup_with(
        sandbox: &Path,
        specs: &[Volume],
        sys_block: &Path,
    ) -> Result<Volumes, VolumeError> {
        let mut volumes = Volumes {
            root: sandbox.join("volumes"),
            subpaths: sandbox.join("volume-subpaths"),
            list: Vec::new(),
        };
        // A sandbox that failed to start may have left its volumes behind.
        volumes.clear()?;
        if let Err(e) = volumes.fill(specs, sys_block) {
            volumes.teardown();
            return Err(e);
        }
        Ok(volumes)
    }

    fn fill(&mut self, specs: &[Volume], sys_block: &Path) -> Result<(), VolumeError> {
        for dir in [&self.root, &self.subpaths] {
            fs::create_dir_all(dir).map_err(|source| VolumeError::Io {
                volume: String::new(),
                path: dir.clone(),
                source,
            })?;
        }
        for spec in specs {
            if !valid_name(&spec.name) {
                return Err(VolumeError::BadName(spec.name.clone()));
            }
            if self.get(&spec.name).is_some() {
                return Err(VolumeError::Duplicate(spec.name.clone()));
            }
            let path = self.root.join(&spec.name);
            let backing = match &spec.medium {
                EmptyDirMedium::BlockSerial { serial } => {
                    mount::disk(&spec.name, &path, serial, sys_block, &self.root)?;
                    Backing::Disk
                }
                EmptyDirMedium::Directory => {
                    mount::directory(&spec.name, &path)?;
                    Backing::Directory
                }
                EmptyDirMedium::Memory => {
                    mount::memory(&spec.name, &path, spec.size_limit)?;
                    Backing::Memory
                }
            };
            self.list.push(PodVolume {
                name: spec.name.clone(),
                path,
                backing,
                size_limit: spec.size_limit,
            });
        }
        Ok(())
    }

    /// The volume of that name.
    pub fn get(&self, name: &str) -> Option<&PodVolume> {
        self.list.iter().find(|v| v.name == name)
    }

    /// What containers mount, with their termination-message files in
    /// `containers` (`<run>/containers`).
    pub fn refs(&self, containers: &Path) -> VolumeRefs {
        VolumeRefs {
            dirs: self
                .list
                .iter()
                .map(|v| (v.name.clone(), v.path.clone()))
                .collect(),
            subpaths: self.subpaths.clone(),
            containers: containers.to_path_buf(),
        }
    }

    /// The first volume whose usage is over its `sizeLimit`, measured as
    /// kubelet's eviction manager does. Memory volumes are skipped: their
    /// tmpfs is sized to the limit, so they cannot exceed it.
    pub fn over_limit(&self) -> Option<Eviction> {
        self.list.iter().find_map(|v| {
            let limit = v.size_limit.filter(|l| *l > 0)?;
            if v.backing == Backing::Memory {
                return None;
            }
            let used = match usage::disk_usage(&v.path) {
                Ok(used) => used,
                Err(e) => {
                    say!("measuring volume {:?}: {e}", v.name);
                    return None;
                }
            };
            (used > limit).then(|| Eviction {
                volume: v.name.clone(),
                used,
                limit,
            })
        })
    }

    /// Unmounts every volume and subPath bind and removes their directories
    /// (a directory volume's files go with them).
    pub fn teardown(&self) {
        if let Err(e) = self.clear() {
            say!("removing the pod's volumes: {e}");
        }
    }

    fn clear(&self) -> Result<(), VolumeError> {
        for dir in [&self.subpaths, &self.root] {
            unmount_tree(dir);
            if !mounts_under(dir).is_empty() {
                return Err(VolumeError::Busy(dir.clone()));
            }
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(VolumeError::Io {
                        volume: String::new(),
                        path: dir.clone(),
                        source: e,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    const TEST: &str = "podvm-agent volume unit test";

    #[test]
    fn volume_names_are_dns_labels() {
        for good in ["data", "a", "cache-1", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "..", "a/b", "Data", "-a", "a-", &"x".repeat(64), "a.b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    fn can_mount() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        podvm_testsupport::skip(TEST, "mounting needs root");
        false
    }

    /// The filesystem type and superblock options mounted at `path`.
    fn mounted(path: &Path) -> Option<(String, String)> {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
        text.lines().rev().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if Path::new(left.split(' ').nth(4)?) != path {
                return None;
            }
            let mut fields = right.split(' ');
            let fstype = fields.next()?.to_string();
            let options = fields.nth(1)?.to_string();
            Some((fstype, options))
        })
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn volume(name: &str, medium: EmptyDirMedium, size_limit: Option<u64>) -> Volume {
        Volume {
            name: name.into(),
            medium,
            size_limit,
        }
    }

    #[test]
    fn directory_and_memory_volumes_and_their_limits() {
        if !can_mount() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let sandbox = tmp.path();
        let specs = [
            volume("data", EmptyDirMedium::Directory, Some(64 << 10)),
            volume("mem", EmptyDirMedium::Memory, Some(1 << 20)),
            volume("free", EmptyDirMedium::Directory, None),
        ];
        let volumes = Volumes::setup_with(sandbox, &specs, Path::new("/nonexistent")).unwrap();
        let data = sandbox.join("volumes/data");
        let mem = sandbox.join("volumes/mem");
        assert_eq!(volumes.get("data").unwrap().path, data);
        assert_eq!(mode(&data), 0o777);
        assert_eq!(mounted(&data), None);
        let (fstype, options) = mounted(&mem).unwrap();
        assert_eq!(fstype, "tmpfs");
        assert!(options.contains("size=1024k"), "{options}");
        assert_eq!(mode(&mem), 0o1777);
        let refs = volumes.refs(Path::new("/run/c"));
        assert_eq!(refs.dirs.len(), 3);
        assert_eq!(refs.subpaths, sandbox.join("volume-subpaths"));

        assert_eq!(volumes.over_limit(), None);
        fs::write(sandbox.join("volumes/free/big"), vec![1u8; 500_000]).unwrap();
        fs::write(mem.join("big"), vec![1u8; 900_000]).unwrap();
        assert_eq!(volumes.over_limit(), None);
        fs::write(data.join("file"), vec![1u8; 100_000]).unwrap();
        let eviction = volumes.over_limit().unwrap();
        assert_eq!(
            (eviction.volume.as_str(), eviction.limit),
            ("data", 64 << 10)
        );
        assert!(eviction.used >= 100_000, "{eviction:?}");
        assert_eq!(
            eviction.message(),
            "Usage of EmptyDir volume \"data\" exceeds the limit \"64Ki\". "
        );

        volumes.teardown();
        assert!(mounts_under(sandbox).is_empty());
        assert!(!sandbox.join("volumes").exists());
    }

    #[test]
    fn bad_specs_leave_nothing_mounted() {
        if !can_mount() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let sandbox = tmp.path();
        let mem = volume("mem", EmptyDirMedium::Memory, None);
        for (specs, expected) in [
            (
                vec![mem.clone(), mem.clone()],
                "volume \"mem\" is declared twice",
            ),
            (
                vec![mem.clone(), volume("../x", EmptyDirMedium::Directory, None)],
                "volume \"../x\": the name is not a DNS label",
            ),
            (
                vec![
                    mem.clone(),
                    volume(
                        "disk",
                        EmptyDirMedium::BlockSerial {
                            serial: "nope".into(),
                        },
                        None,
                    ),
                ],
                "volume \"disk\": no block device with serial \"nope\"",
            ),
        ] {
            let err = Volumes::setup_with(sandbox, &specs, tmp.path()).unwrap_err();
            assert_eq!(err.to_string(), expected);
            assert!(mounts_under(sandbox).is_empty(), "{expected}");
        }
    }

    /// A loop device, detached when dropped.
    struct Loop(String);

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
        }
    }

    #[test]
    fn a_disk_volume_is_the_ext4_disk_with_its_serial() {
        if !can_mount() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("disk.img");
        fs::File::create(&image).unwrap().set_len(16 << 20).unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .arg("-q")
            .arg("-F")
            .arg(&image)
            .status();
        if !mkfs.is_ok_and(|s| s.success()) {
            podvm_testsupport::skip(TEST, "no working mkfs.ext4");
            return;
        }
        let attach = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&image)
            .output();
        let device = match attach {
            Ok(out) if out.status.success() => {
                Loop(String::from_utf8(out.stdout).unwrap().trim().into())
            }
            _ => {
                podvm_testsupport::skip(TEST, "no loop device could be attached");
                return;
            }
        };
        // A /sys/block where the loop device carries the volume's serial.
        let sys = tmp.path().join("sys");
        let name = device.0.trim_start_matches("/dev/");
        for (disk, serial) in [("vda", "rootfs"), (name, "vol-data")] {
            fs::create_dir_all(sys.join(disk)).unwrap();
            fs::write(sys.join(disk).join("serial"), format!("{serial}\n")).unwrap();
        }
        let sandbox = tmp.path().join("sandbox");
        let specs = [volume(
            "data",
            EmptyDirMedium::BlockSerial {
                serial: "vol-data".into(),
            },
            Some(1 << 20),
        )];
        let volumes = Volumes::setup_with(&sandbox, &specs, &sys).unwrap();
        let path = sandbox.join("volumes/data");
        let (fstype, _) = mounted(&path).unwrap();
        assert_eq!(fstype, "ext4");
        assert_eq!(mode(&path), 0o777);
        assert_eq!(fs::read_dir(&path).unwrap().count(), 0, "lost+found left");
        assert_eq!(volumes.get("data").unwrap().backing, Backing::Disk);
        assert_eq!(volumes.over_limit(), None);
        fs::write(path.join("big"), vec![1u8; 2 << 20]).unwrap();
        assert_eq!(volumes.over_limit().unwrap().volume, "data");
        volumes.teardown();
        assert_eq!(mounted(&path), None);
        assert!(mounts_under(&sandbox).is_empty());
    }
}
