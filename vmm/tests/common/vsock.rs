//! The host side of the hybrid vsock (Firecracker's scheme, see
//! `docs/vmm.md`) for the tests and the vsock benchmark
//! (`vmm/examples/bench_vsock.rs`, which includes this file by path):
//! connecting through the VMM's Unix socket with `CONNECT <port>\n`, the
//! test data pattern the test guest uses
//! (`vmm/test-guest/src/virtio_vsock/pattern.rs`), and a full-duplex echo
//! exchange checked byte for byte.

#![allow(dead_code)] // each user takes part of this module

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long host-side reads and writes wait before the exchange fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Byte `i` of the test stream with `seed`; the guest's `pattern`.
pub fn pattern(seed: u8, i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i >> 8) as u8) ^ seed
}

/// `len` bytes of the stream with `seed` from offset `from`.
pub fn pattern_bytes(seed: u8, from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64)
        .map(|i| pattern(seed, i))
        .collect()
}

/// The first offset where `data` (starting at stream offset `from`)
/// differs from the pattern `seed`.
pub fn pattern_mismatch(seed: u8, from: u64, data: &[u8]) -> Option<u64> {
    data.iter()
        .zip(from..)
        .find(|(b, i)| **b != pattern(seed, *i))
        .map(|(_, i)| i)
}

/// Connects to guest `port` through the VMM's socket `uds`: writes
/// `CONNECT <port>\n` and reads the `OK <host port>\n` line byte by byte;
/// returns the stream (with [`IO_TIMEOUT`] on reads and writes) and the
/// host port. As podvm's agent client does, it retries for up to `wait`
/// while the socket is not there yet or the VMM closes the stream without
/// an answer (the guest driver was not up: the device reset dropped it, or
/// nothing listened on the port yet).
pub fn connect(uds: &Path, port: u32, wait: Duration) -> io::Result<(UnixStream, u32)> {
    let started = Instant::now();
    loop {
        match try_connect(uds, port) {
            Ok(connected) => return Ok(connected),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::UnexpectedEof
                ) && started.elapsed() < wait =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

fn try_connect(uds: &Path, port: u32) -> io::Result<(UnixStream, u32)> {
    let mut stream = UnixStream::connect(uds)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(format!("CONNECT {port}\n").as_bytes())?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') && line.len() < 64 {
        if stream.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "CONNECT {port}: closed after {:?}",
                    String::from_utf8_lossy(&line)
                ),
            ));
        }
        line.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&line);
    let host_port = text
        .strip_prefix("OK ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .ok_or_else(|| io::Error::other(format!("CONNECT {port}: answer {text:?}")))?;
    Ok((stream, host_port))
}

/// Sends `len` bytes of the pattern `seed` on `stream` in `chunk`-byte
/// writes from one thread while reading them back on this one (starting
/// after `read_after`, so that the buffers on the way fill up), checking
/// every byte; returns the bytes echoed.
pub fn echo_exchange(
    stream: &UnixStream,
    seed: u8,
    len: usize,
    chunk: usize,
    read_after: Duration,
) -> io::Result<u64> {
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || -> io::Result<()> {
        let mut sent = 0;
        while sent < len {
            let n = chunk.min(len - sent);
            writer.write_all(&pattern_bytes(seed, sent as u64, n))?;
            sent += n;
        }
        Ok(())
    });
    std::thread::sleep(read_after);
    let mut reader = stream;
    let mut got = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while got < len as u64 {
        let want = buf.len().min(len - got as usize);
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("echo ended after {got} of {len} bytes"),
            ));
        }
        if let Some(at) = pattern_mismatch(seed, got, &buf[..n]) {
            return Err(io::Error::other(format!(
                "echoed byte {at} differs (seed {seed})"
            )));
        }
        got += n as u64;
    }
    sender
        .join()
        .map_err(|_| io::Error::other("sender thread panicked"))??;
    Ok(got)
}
