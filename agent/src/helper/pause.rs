//! The sandbox holder (`__podvm_pause <hostname>`), Kubernetes' "pause"
//! container: it unshares IPC, UTS and network namespaces, sets the pod's
//! hostname, brings up `lo`, prints `ready` on stdout (or `error: ...`) and
//! then only waits for SIGTERM/SIGINT. Containers join its namespaces.

use std::io::{self, Write};
use std::os::fd::AsRawFd;

use anyhow::Context;
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Entry point of the subcommand; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let mut out = io::stdout();
    if let Err(e) = setup(args.first().map(String::as_str).unwrap_or_default()) {
        let _ = writeln!(out, "error: {e:#}");
        let _ = out.flush();
        return 1;
    }
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).is_err() {
        return 1;
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    loop {
        if let Ok(Signal::SIGTERM | Signal::SIGINT) = set.wait() {
            return 0;
        }
    }
}

fn setup(hostname: &str) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWNET)
        .context("unsharing IPC, UTS and network namespaces")?;
    nix::unistd::sethostname(hostname)
        .with_context(|| format!("setting the hostname {hostname:?}"))?;
    loopback_up().context("bringing up lo")?;
    Ok(())
}

/// `ip link set lo up`, with the SIOCSIFFLAGS ioctl.
///
/// The request constant is `c_ulong` on glibc and `c_int` on musl, hence the
/// cast to `libc::Ioctl` (a no-op on glibc).
#[allow(clippy::unnecessary_cast)]
fn loopback_up() -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name in `req` and writes the flags into
    // it; `req` is a valid, exclusively borrowed ifreq.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ifru_flags` is the union member SIOCGIFFLAGS just filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS only reads `req`, a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
