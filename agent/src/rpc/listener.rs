//! The listening socket: AF_VSOCK in the VM, a Unix socket in host mode.
//! It is created here (close-on-exec, so helpers never inherit it; a stale
//! Unix socket file replaced) and handed to the ttrpc server, which accepts
//! on it.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::sys::socket::{
    bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, VsockAddr,
};

/// Pending connections the kernel queues before the server accepts them.
const BACKLOG: i32 = 128;

/// See the module documentation.
pub enum Listener {
    Unix(UnixListener),
    Vsock(OwnedFd),
}

impl Listener {
    /// Listens on a Unix socket at `path`, replacing a stale one. The
    /// socket is bound under a temporary name and renamed into place once
    /// it listens, so a client that sees `path` can connect.
    pub fn unix(path: &Path) -> std::io::Result<Listener> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary)?;
        if let Err(e) = std::fs::rename(&temporary, path) {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
        Ok(Listener::Unix(listener))
    }

    /// Listens on AF_VSOCK `port`, any CID.
    pub fn vsock(port: u32) -> std::io::Result<Listener> {
        let fd = socket(
            AddressFamily::Vsock,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        bind(fd.as_raw_fd(), &VsockAddr::new(libc::VMADDR_CID_ANY, port))?;
        listen(&fd, Backlog::new(BACKLOG)?)?;
        Ok(Listener::Vsock(fd))
    }

    /// Gives up ownership of the descriptor (to the server, for the rest
    /// of the process's life).
    pub fn into_raw_fd(self) -> RawFd {
        match self {
            Listener::Unix(l) => l.into_raw_fd(),
            Listener::Vsock(fd) => fd.into_raw_fd(),
        }
    }
}
