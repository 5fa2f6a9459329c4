//! The host side of the vsock muxer: [`Backend`], and [`UnixBackend`],
//! Firecracker's hybrid scheme: host clients connect to one listening Unix
//! socket; guest connections to port P go to `<uds>_P`.

use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// The host side of the muxer.
pub trait Backend: Send {
    /// The fd that becomes readable when [`Backend::accept`] has a stream.
    fn listener_fd(&self) -> Option<RawFd>;
    /// A host stream that connected, if any (non-blocking).
    fn accept(&mut self) -> std::io::Result<Option<UnixStream>>;
    /// Connects to whatever serves guest-initiated connections to `port`.
    fn connect(&mut self, port: u32) -> std::io::Result<UnixStream>;
}

/// The real backend: a listening socket at `uds`, guest connections to
/// port P go to `<uds>_P`.
pub struct UnixBackend {
    listener: UnixListener,
    uds: PathBuf,
}

impl UnixBackend {
    /// Listens on `uds` (which must not exist); the socket file is removed
    /// when the backend is dropped.
    pub fn bind(uds: &Path) -> Result<Self> {
        let listener = UnixListener::bind(uds).map_err(|source| Error::Bind {
            path: uds.to_path_buf(),
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Io("set_nonblocking", e))?;
        Ok(Self {
            listener,
            uds: uds.to_path_buf(),
        })
    }
}

impl Drop for UnixBackend {
    /// Removes the socket file this backend created.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.uds);
    }
}

impl Backend for UnixBackend {
    fn listener_fd(&self) -> Option<RawFd> {
        Some(self.listener.as_raw_fd())
    }

    fn accept(&mut self) -> std::io::Result<Option<UnixStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => Ok(Some(stream)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn connect(&mut self, port: u32) -> std::io::Result<UnixStream> {
        let mut path = self.uds.clone().into_os_string();
        path.push(format!("_{port}"));
        UnixStream::connect(path)
    }
}
