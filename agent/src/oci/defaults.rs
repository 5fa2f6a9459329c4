//! containerd's defaults for a non-privileged container (its
//! `oci/spec.go`, as the CRI plugin starts from): capabilities, masked and
//! read-only paths, the open-files limit and the standard mounts; and
//! kubelet's OOM score for a pod without resources.

use std::path::Path;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, Mount, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};
use oci_spec::OciSpecError;

/// The OCI runtime spec version written into built specs.
pub const OCI_VERSION: &str = oci_spec::runtime::VERSION;

/// containerd's `defaultUnixCaps`: bounding, effective and permitted.
pub const CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container (a directory gets an empty read-only
/// tmpfs, a file `/dev/null`).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

/// Paths made read-only in the container.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// containerd's RLIMIT_NOFILE, soft and hard.
pub const NOFILE_LIMIT: u64 = 1024;

/// kubelet's `oom_score_adj` for a BestEffort pod, which every pod is
/// until resources are supported.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// containerd's capability sets: bounding, effective and permitted; no
/// inheritable (containerd dropped it, CVE-2022-24769) and no ambient.
pub fn capabilities() -> LinuxCapabilities {
    let set: Capabilities = CAPABILITIES.into_iter().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()))
        .set_effective(Some(set.clone()))
        .set_permitted(Some(set))
        .set_inheritable(None)
        .set_ambient(None);
    caps
}

/// containerd's resource limits: RLIMIT_NOFILE only.
pub fn rlimits() -> Result<Vec<PosixRlimit>, OciSpecError> {
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(NOFILE_LIMIT)
        .hard(NOFILE_LIMIT)
        .build()?;
    Ok(vec![nofile])
}

/// A mount of `fstype` from `source` at `destination`.
pub fn mount(destination: &str, fstype: &str, source: &Path, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(destination.into())
        .set_typ(Some(fstype.into()))
        .set_source(Some(source.to_path_buf()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// A read-write bind mount of `source` at `destination`, as the CRI plugin
/// makes for the sandbox's files.
pub fn bind(destination: &str, source: &Path) -> Mount {
    mount(destination, "bind", source, &["rbind", "rprivate", "rw"])
}

/// containerd's standard mounts, in its order: `/proc`, a `/dev` tmpfs,
/// `/dev/pts`, `/dev/mqueue`, read-only `/sys` and `/sys/fs/cgroup`.
pub fn standard_mounts() -> Vec<Mount> {
    let p = Path::new;
    vec![
        mount("/proc", "proc", p("proc"), &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            p("tmpfs"),
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            p("devpts"),
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            p("mqueue"),
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            p("sysfs"),
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            p("cgroup"),
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}
