//! PID 1 duties in the guest: the standard mounts, cgroup v2 controllers,
//! valid stdio, and powering the VM off. In host mode only the subreaper
//! part applies (so orphans of the containers come back to the agent).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::reboot::{reboot, RebootMode};

use crate::cgroup::enable_controllers;
use crate::console::say;

/// The cgroup v2 mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether `path` is a mount point (its device differs from its parent's).
fn is_mount_point(path: &Path) -> bool {
    let (Ok(me), Some(parent)) = (fs::metadata(path), path.parent()) else {
        return false;
    };
    fs::metadata(parent).is_ok_and(|p| p.dev() != me.dev())
}

/// Mounts the guest's filesystems; failures are logged and skipped.
pub fn mount_system() {
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: [(&str, &str, &str, MsFlags, Option<&str>); 8] = [
        ("proc", "/proc", "proc", nosuid_nodev_noexec, None),
        ("sysfs", "/sys", "sysfs", nosuid_nodev_noexec, None),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            MsFlags::MS_NOSUID,
            Some("mode=0755"),
        ),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("gid=5,mode=0620,ptmxmode=0666"),
        ),
        (
            "tmpfs",
            "/dev/shm",
            "tmpfs",
            nosuid_nodev_noexec,
            Some("mode=1777"),
        ),
        (
            "tmpfs",
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        (
            "tmpfs",
            "/tmp",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        (
            "cgroup2",
            CGROUP_ROOT,
            "cgroup2",
            nosuid_nodev_noexec,
            Some("nsdelegate"),
        ),
    ];
    for (source, target, fstype, flags, data) in table {
        let path = Path::new(target);
        if let Err(e) = fs::create_dir_all(path) {
            say!("cannot create {target}: {e}");
            continue;
        }
        if is_mount_point(path) {
            continue;
        }
        if let Err(e) = mount(Some(source), path, Some(fstype), flags, data) {
            say!("mounting {fstype} on {target} failed: {e}");
        }
    }
    if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
        enable_controllers(Path::new(CGROUP_ROOT));
    }
}

/// Moves the root off the initramfs, the way `switch_root` does.
///
/// The initramfs root (rootfs) is the one mount without a parent, so
/// `pivot_root` — which containers need for a root they cannot walk out of —
/// fails with EINVAL in every namespace copied from it. Bind-mounting `/`
/// onto a folder and moving that mount over `/` gives a root that has a
/// parent; the rootfs stays underneath, unused.
pub fn leave_initramfs() {
    const NEW_ROOT: &str = "/.podvm-root";
    let steps = || -> nix::Result<()> {
        let _ = fs::create_dir(NEW_ROOT);
        mount(
            Some("/"),
            NEW_ROOT,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
        nix::unistd::chdir(NEW_ROOT)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)?;
        nix::unistd::chroot(".")?;
        nix::unistd::chdir("/")
    };
    if let Err(e) = steps() {
        say!("cannot move the root off the initramfs ({e}); containers fall back to chroot");
    }
}

/// Makes sure fds 0, 1 and 2 are open (the kernel leaves them closed when
/// the initramfs has no /dev/console), so pipes never land on them.
pub fn ensure_stdio() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        let opened = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/console")
            .or_else(|_| {
                fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
            });
        if let Ok(file) = opened {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&file);
            if raw != fd {
                // SAFETY: dup2 onto a descriptor number known to be closed.
                unsafe { libc::dup2(raw, fd) };
            } else {
                // It landed on the right number: keep it open.
                std::mem::forget(file);
            }
        }
    }
}

/// Orphaned descendants are re-parented to the agent (as they are to PID 1).
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        say!("cannot become a child subreaper: {e}");
    }
}

/// Syncs and reboots; qemu runs with `-no-reboot`, so the VM ends.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let err = match reboot(RebootMode::RB_AUTOBOOT) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    say!("reboot failed: {err}");
    loop {
        std::thread::park();
    }
}
